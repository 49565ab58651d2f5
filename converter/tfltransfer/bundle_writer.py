"""Writes a bundle folder atomically: staging folder, files, manifest, rename into place.

The manifest is completed (file hashes, sizes, bundle id) and checked with the runtime's own
manifest reader before anything is written, so the converter cannot write a manifest that
:mod:`personalizer` refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from personalizer.bundle_format import FORMAT, MANIFEST, bundle_id_of
from personalizer.errors import BundleError
from personalizer.model.bundle import parse_manifest
from tfltransfer.errors import ConverterError, OutputDirError


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


def complete_manifest(manifest: dict, files: dict[str, bytes]) -> dict:
    """``manifest`` with ``files`` (sha256, size) and ``bundle_id`` filled in, checked as the
    runtime checks it (:func:`personalizer.model.bundle.parse_manifest`: the typed
    :class:`~personalizer.bundle_format.Manifest` model, the id, each model's signature order
    and shapes).

    Raises:
      ConverterError: the runtime would refuse the manifest (a converter bug; the message says
        which field).
    """
    hashes = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    manifest = dict(manifest)
    manifest["files"] = {
        name: {"sha256": hashes[name], "size": len(files[name])} for name in sorted(files)
    }
    manifest["bundle_id"] = bundle_id_of(hashes)
    # A JSON round trip: the check sees exactly what a runtime will read.
    document = json.loads(json.dumps(manifest))
    try:
        parse_manifest(document, where="the manifest to write")
    except BundleError as exc:
        raise ConverterError(f"the runtime would refuse this bundle: {exc}") from None
    return manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bundle(folder: Path, files: dict[str, bytes], manifest: dict) -> None:
    """Write ``files`` and the completed ``manifest`` (see :func:`complete_manifest`) into
    ``folder``, each synced to disk."""
    listed = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    actual = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    if listed != actual:
        raise ConverterError("the manifest does not list the files being written (a bug)")
    for name, content in files.items():
        with open(folder / name, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    with open(folder / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(folder)


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` (same filesystem), removed unless published."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    # mkdtemp makes a private folder (0700); the bundle gets a new folder's usual mode, so a copy
    # (scp, cp -r) stays readable by the board's service user.
    umask = os.umask(0o022)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
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
