"""Load a bundle (format version 1) and check it against its manifest.

A bundle is a folder, or a ``.zip`` of that folder's contents with or without one top-level
folder (docs/bundle-format.md). Loading reads every listed file into memory, checks its size and
sha256 and the bundle id, and parses the manifest into typed objects, so the rest of the runtime
never sees raw JSON and never guesses a shape.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from ..bundle_format import (
    FORMAT,
    MANIFEST,
    SUPPORTED_FORMAT_VERSIONS,
    Manifest,
    ModelSpec,
    TensorSpec,
    bundle_id_of,
)
from ..errors import (
    BundleError,
    BundleHashMismatch,
    BundleNotFoundError,
    UnsupportedBundleVersion,
)
from ..schema import Problem, problems_of

__all__ = ["Bundle", "Manifest", "ModelSpec", "TensorSpec", "load_bundle", "parse_manifest"]


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its manifest and the bytes of every file it lists."""

    source: Path
    manifest: Manifest
    contents: Mapping[str, bytes]

    @property
    def bundle_id(self) -> str:
        """The manifest's ``bundle_id`` (checked against the file hashes)."""
        return self.manifest.bundle_id

    def model_bytes(self, model: str) -> bytes:
        """The flatbuffer of one of the five models (``bottleneck``, ``train_head``, ...)."""
        return self.contents[self.manifest.models[model].file]

    def has_file(self, name: str) -> bool:
        """Whether the bundle lists (and therefore carries) the file ``name``."""
        return name in self.contents


def load_bundle(path: str | Path) -> Bundle:
    """Read the bundle at ``path`` (folder or ``.zip``), check every file and parse the manifest.

    Raises:
        BundleNotFoundError: nothing at ``path``.
        UnsupportedBundleVersion: a format or format version this runtime does not know.
        BundleHashMismatch: a listed file is missing or its size or sha256 differs.
        BundleError: any other defect of the manifest, named by its field.
    """
    source = Path(path)
    reader = _reader(source)
    manifest = _read_manifest(reader, source)
    contents = {
        name: _checked_file(reader, source, name, sha, size)
        for name, (sha, size) in ((n, (e.sha256, e.size)) for n, e in manifest.files.items())
    }
    return Bundle(source=source, manifest=manifest, contents=contents)


def read_manifest(path: str | Path) -> Manifest:
    """Read and check only the manifest of the bundle at ``path`` (folder or ``.zip``).

    The same reader as :func:`load_bundle` (so a bundle that passes here is found the same way
    there), without reading the models.
    """
    source = Path(path)
    return _read_manifest(_reader(source), source)


def _reader(source: Path) -> _Reader:
    if not source.exists():
        raise BundleNotFoundError(
            f"bundle not found: {source} (give the folder written by tflite-transfer-convert "
            "or a .zip of it)"
        )
    return _ZipReader(source) if source.is_file() else _FolderReader(source)


def _read_manifest(reader: _Reader, source: Path) -> Manifest:
    raw = reader.read(MANIFEST)
    if raw is None:
        raise BundleError(f"{source}: no {MANIFEST} in the bundle; is this a converter output?")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{source}/{MANIFEST} is not valid JSON: {err}") from err
    return parse_manifest(doc, where=f"{source}/{MANIFEST}")


def _checked_file(reader: _Reader, source: Path, name: str, sha: str, size: int) -> bytes:
    data = reader.read(name)
    if data is None:
        raise BundleHashMismatch(
            f"{source}: file {name!r} listed in {MANIFEST} is missing; copy the whole bundle "
            "folder again"
        )
    if len(data) != size:
        raise BundleHashMismatch(
            f"{source}: {name} has {len(data)} bytes, the manifest says {size}; the file is "
            "truncated or was replaced, copy the bundle again"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise BundleHashMismatch(
            f"{source}: {name} has sha256 {actual}, the manifest says {sha}; the file is corrupt "
            "or was changed after conversion, copy or convert the bundle again"
        )
    return data


# --- readers ------------------------------------------------------------------------------------


class _Reader:
    def read(self, name: str) -> bytes | None:
        raise NotImplementedError


class _FolderReader(_Reader):
    def __init__(self, root: Path) -> None:
        self._root = root

    def read(self, name: str) -> bytes | None:
        path = self._root / _safe_member(name, self._root)
        return path.read_bytes() if path.is_file() else None


class _ZipReader(_Reader):
    """Reads members of a bundle zip, with or without one top-level folder."""

    def __init__(self, path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                self._members = {
                    info.filename: info for info in archive.infolist() if not info.is_dir()
                }
        except (zipfile.BadZipFile, OSError) as err:
            raise BundleError(
                f"{path} is neither a bundle folder nor a readable .zip ({err})"
            ) from err
        self._path = path
        self._prefix = self._find_prefix()

    def _find_prefix(self) -> str:
        if MANIFEST in self._members:
            return ""
        tops = {name.split("/", 1)[0] for name in self._members if "/" in name}
        if len(tops) == 1:
            prefix = next(iter(tops)) + "/"
            if prefix + MANIFEST in self._members:
                return prefix
        return ""

    def read(self, name: str) -> bytes | None:
        info = self._members.get(self._prefix + _safe_member(name, self._path).as_posix())
        if info is None:
            return None
        try:
            with zipfile.ZipFile(self._path) as archive:
                return archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise BundleHashMismatch(f"{self._path}: cannot read {name} ({err})") from err


def _safe_member(name: str, source: Path) -> PurePosixPath:
    """Refuse manifest file names that would escape the bundle (absolute or with ``..``)."""
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts or not member.parts:
        raise BundleError(f"{source}/{MANIFEST}: file name {name!r} points outside the bundle")
    return member


# --- manifest parsing ---------------------------------------------------------------------------


def parse_manifest(doc: Any, where: str = MANIFEST) -> Manifest:
    """Parse and check a manifest document (the decoded JSON) of a format-1 bundle.

    ``where`` names the manifest in error messages.

    Raises:
        UnsupportedBundleVersion: another format, or a format version this runtime does not read.
        BundleHashMismatch: ``bundle_id`` does not follow from the file hashes.
        BundleError: any other defect, naming the field.
    """
    if not isinstance(doc, dict):
        raise BundleError(f"{where}: the top level must be an object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise UnsupportedBundleVersion(
            f"{where}: format is {fmt!r}, expected {FORMAT!r}; this is not a bundle written "
            "by tflite-transfer-convert"
        )
    version = doc.get("format_version")
    if isinstance(version, bool) or version not in SUPPORTED_FORMAT_VERSIONS:
        raise UnsupportedBundleVersion(
            f"{where}: format_version {version!r} is not supported by this runtime (it reads "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}); convert the model with a "
            "matching converter or upgrade the personalizer package"
        )
    try:
        manifest = Manifest.model_validate(doc)
    except ValidationError as err:
        raise BundleError(_manifest_error(where, problems_of(err, Manifest)[0])) from None
    for name in manifest.files:
        _safe_member(name, Path(where).parent)
    expected_id = bundle_id_of(manifest.file_hashes)
    if manifest.bundle_id != expected_id:
        raise BundleHashMismatch(
            f"{where}: bundle_id is {manifest.bundle_id!r} but the file hashes give "
            f"{expected_id!r}; the manifest was edited or a files entry is missing, convert the "
            "bundle again"
        )
    _check_signatures(manifest, where)
    return manifest


_PHRASES = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "a non-empty string",
    "list": "a list",
    "table": "an object",
}


def _manifest_error(where: str, problem: Problem) -> str:
    """One manifest problem as the line a user reads."""
    if problem.kind == "missing":
        return f"{where}: missing field {problem.dotted}; convert the bundle again"
    if problem.kind == "unknown":
        return (
            f"{where}: unknown field {problem.dotted}; this runtime reads format "
            f"{SUPPORTED_FORMAT_VERSIONS[-1]} manifests (upgrade it, or convert the bundle again)"
        )
    expected = problem.expected
    if problem.message:
        where_field = f"{where}: {problem.dotted}: " if problem.path else f"{where}: "
        return f"{where_field}{problem.message}; convert the bundle again"
    if expected.type == "choice":
        want = "must be one of " + ", ".join(repr(c) for c in expected.choices)
    else:
        want = "must be " + _PHRASES.get(expected.type, "of another type")
        if expected.low is not None:
            want += f" >= {expected.low:g}"
    return (
        f"{where}: {problem.dotted} {want}, got {problem.value!r}; the manifest was not written "
        "by a format-1 converter or was edited"
    )


def _check_signatures(m: Manifest, where: str) -> None:
    """Each model's listed signature must be the format's, in positional order, with the shapes
    that follow from the parameters, bottleneck and class count."""
    for name, spec in m.models.items():
        order = m.expected_signature(name)
        want_in, want_out = m.expected_shapes(name)
        for kind, listed, names, shapes in (
            ("inputs", spec.inputs, order.inputs, want_in),
            ("outputs", spec.outputs, order.outputs, want_out),
        ):
            got = {t.name: tuple(t.shape) for t in listed}
            for tensor_name, shape in zip(names, shapes, strict=True):
                if tensor_name not in got:
                    raise BundleError(
                        f"{where}: models.{name}.{kind} has no {tensor_name!r} (it lists "
                        f"{sorted(got)}); the bundle does not follow format 1"
                    )
                if got[tensor_name] != tuple(shape):
                    raise BundleError(
                        f"{where}: models.{name}.{kind} {tensor_name!r} has shape "
                        f"{list(got[tensor_name])}, expected {list(shape)} from the parameters, "
                        "bottleneck and class count"
                    )
            if len(got) != len(names):
                extra = sorted(set(got) - set(names))
                raise BundleError(f"{where}: models.{name}.{kind} has unexpected {extra}")
            if tuple(t.name for t in listed) != names:
                raise BundleError(
                    f"{where}: models.{name}.{kind} are listed as {[t.name for t in listed]}, "
                    f"the format's order is {list(names)}; convert the bundle again"
                )
