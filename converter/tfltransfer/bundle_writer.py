"""Writes a bundle folder atomically: staging folder, hashes, manifest, rename into place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tfltransfer.errors import OutputDirError

FORMAT = "tflite-transfer-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def is_bundle(path: Path) -> bool:
    """True when ``path`` holds a manifest of this format (so replacing it loses nothing else)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def check_target(target: Path) -> None:
    """Refuse a target that exists and is not a bundle (it could hold the user's files)."""
    if target.exists() and not target.is_dir():
        raise OutputDirError(f"{target} exists and is not a directory; choose another path")
    if target.is_dir() and any(target.iterdir()) and not is_bundle(target):
        raise OutputDirError(
            f"{target} exists and is not a bundle; refusing to overwrite it. Choose a new "
            "--out_model_dir or remove that folder"
        )
    if not target.parent.exists():
        raise OutputDirError(f"{target.parent} does not exist; create it first")


def bundle_id(file_hashes: dict[str, str]) -> str:
    """First 16 hex digits of the sha256 over the sorted ``"<file> <sha256>"`` lines."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bundle(folder: Path, files: dict[str, bytes], manifest: dict) -> dict:
    """Write ``files`` and the completed manifest (hashes, sizes, id) into ``folder``."""
    hashes = {}
    for name, content in files.items():
        with open(folder / name, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        hashes[name] = hashlib.sha256(content).hexdigest()
    manifest = dict(manifest)
    manifest["files"] = {
        name: {"sha256": hashes[name], "size": len(files[name])} for name in sorted(files)
    }
    manifest["bundle_id"] = bundle_id(hashes)
    with open(folder / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(folder)
    return manifest


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (same filesystem), removed unless published."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, target: Path) -> None:
    """Move the finished bundle into place; an older bundle there is replaced."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
