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

import numpy as np

from ..errors import (
    BundleError,
    BundleHashMismatch,
    BundleNotFoundError,
    UnsupportedBundleVersion,
)

FORMAT_NAME = "tflite-transfer-bundle"
SUPPORTED_FORMAT_VERSIONS = (1,)
MANIFEST = "manifest.json"
MODEL_NAMES = ("initialize", "bottleneck", "train_head", "inference", "optimizer")
EDGETPU_BOTTLENECK = "bottleneck_edgetpu.tflite"
_DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "uint8": np.uint8}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: a signature input/output, a parameter or an optimizer state tensor."""

    name: str
    shape: tuple[int, ...]  # -1 marks the dynamic batch dimension
    dtype: np.dtype


@dataclass(frozen=True)
class StateSpec(TensorSpec):
    """An optimizer state tensor and the value a fresh state is filled with."""

    init: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    """One ``.tflite`` model of the bundle and its signature as the manifest lists it."""

    name: str
    file: str
    requires_flex: bool
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer kind, its hyper-parameters and the layout of its state."""

    kind: str
    hyperparameters: Mapping[str, float]
    state: tuple[StateSpec, ...]


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of a format-1 bundle."""

    format_version: int
    bundle_id: str
    created: Mapping[str, Any]
    num_classes: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]  # (1, H, W, 3)
    base: Mapping[str, Any]
    bottleneck_shape: tuple[int, ...]  # without the batch dimension
    head_kind: str
    imprintable: bool
    parameters: tuple[TensorSpec, ...]
    optimizer: OptimizerSpec
    max_batch_size: int
    dynamic_batch: bool
    requires_flex: bool
    models: Mapping[str, ModelSpec]
    files: Mapping[str, tuple[str, int]]  # file -> (sha256, size)

    @property
    def image_size(self) -> tuple[int, int]:
        """The model's input (height, width)."""
        return self.input_shape[1], self.input_shape[2]


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


def bundle_id_of(files: Mapping[str, tuple[str, int]]) -> str:
    """The bundle id the format defines: sha256 of the sorted ``"<file> <sha256>\\n"`` lines."""
    lines = "".join(f"{name} {sha}\n" for name, (sha, _) in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def load_bundle(path: str | Path) -> Bundle:
    """Read the bundle at ``path`` (folder or ``.zip``), check every file and parse the manifest.

    Raises:
        BundleNotFoundError: nothing at ``path``.
        UnsupportedBundleVersion: a format or format version this runtime does not know.
        BundleHashMismatch: a listed file is missing or its size or sha256 differs.
        BundleError: any other defect of the manifest, named by its field.
    """
    source = Path(path)
    if not source.exists():
        raise BundleNotFoundError(
            f"bundle not found: {source} (give the folder written by tflite-transfer-convert "
            "or a .zip of it)"
        )
    reader = _ZipReader(source) if source.is_file() else _FolderReader(source)
    raw = reader.read(MANIFEST)
    if raw is None:
        raise BundleError(f"{source}: no {MANIFEST} in the bundle; is this a converter output?")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{source}/{MANIFEST} is not valid JSON: {err}") from err
    manifest = parse_manifest(doc, where=f"{source}/{MANIFEST}")
    contents = {
        name: _checked_file(reader, source, name, sha, size)
        for name, (sha, size) in manifest.files.items()
    }
    return Bundle(source=source, manifest=manifest, contents=contents)


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


class _Fields:
    """Typed access to one JSON object, naming the field path in every error."""

    def __init__(self, doc: Any, path: str, where: str) -> None:
        if not isinstance(doc, dict):
            raise BundleError(f"{where}: {path or 'the top level'} must be an object")
        self._doc, self._path, self._where = doc, path, where

    def _name(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _fail(self, key: str, want: str, value: Any) -> BundleError:
        return BundleError(
            f"{self._where}: {self._name(key)} must be {want}, got {value!r}; the manifest was "
            "not written by a format-1 converter or was edited"
        )

    def keys(self) -> list[str]:
        return list(self._doc)

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self._doc:
            if default is not ...:
                return default
            raise BundleError(f"{self._where}: missing field {self._name(key)}")
        return self._doc[key]

    def obj(self, key: str) -> _Fields:
        return _Fields(self.get(key), self._name(key), self._where)

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string", value)
        return value

    def integer(self, key: str, minimum: int = 0) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(key, f"an integer >= {minimum}", value)
        return value

    def flag(self, key: str, default: Any = ...) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def number(self, key: str, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number", value)
        return float(value)

    def items(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return value

    def shape(self, key: str, allow_batch: bool = False) -> tuple[int, ...]:
        value = self.items(key)
        lowest = -1 if allow_batch else 0
        if not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= lowest and d != 0 for d in value
        ):
            raise self._fail(key, "a list of positive dimensions", value)
        return tuple(value)

    def dtype(self, key: str) -> np.dtype:
        value = self.get(key)
        if value not in _DTYPES:
            raise self._fail(key, f"one of {sorted(_DTYPES)}", value)
        return np.dtype(_DTYPES[value])


def _tensor(doc: Any, path: str, where: str, allow_batch: bool = False) -> TensorSpec:
    fields = _Fields(doc, path, where)
    return TensorSpec(
        fields.text("name"), fields.shape("shape", allow_batch), fields.dtype("dtype")
    )


def _state(doc: Any, path: str, where: str) -> StateSpec:
    fields = _Fields(doc, path, where)
    return StateSpec(
        fields.text("name"),
        fields.shape("shape"),
        fields.dtype("dtype"),
        fields.number("init", 0.0),
    )


def _hyperparameters(opt: _Fields, where: str) -> dict[str, float]:
    if "hyperparameters" not in opt.keys():
        return {}
    fields = opt.obj("hyperparameters")
    return {key: fields.number(key) for key in fields.keys()}


def parse_manifest(doc: Any, where: str = MANIFEST) -> Manifest:
    """Parse and check a manifest document (the decoded JSON) of a format-1 bundle.

    ``where`` names the manifest in error messages.
    """
    top = _Fields(doc, "", where)
    fmt = top.get("format", None)
    if fmt != FORMAT_NAME:
        raise UnsupportedBundleVersion(
            f"{where}: format is {fmt!r}, expected {FORMAT_NAME!r}; this is not a bundle written "
            "by tflite-transfer-convert"
        )
    version = top.get("format_version", None)
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise UnsupportedBundleVersion(
            f"{where}: format_version {version!r} is not supported by this runtime (it reads "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}); convert the model with a "
            "matching converter or upgrade the personalizer package"
        )

    files: dict[str, tuple[str, int]] = {}
    files_doc = top.obj("files")
    for name in files_doc.keys():
        entry = files_doc.obj(name)
        sha = entry.text("sha256").lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError(f"{where}: files.{name}.sha256 is not 64 hex digits: {sha!r}")
        files[name] = (sha, entry.integer("size"))

    bundle_id = top.text("bundle_id")
    expected_id = bundle_id_of(files)
    if bundle_id != expected_id:
        raise BundleHashMismatch(
            f"{where}: bundle_id is {bundle_id!r} but the file hashes give {expected_id!r}; the "
            "manifest was edited, convert the bundle again"
        )

    num_classes = top.integer("num_classes", minimum=1)
    class_names = tuple(top.items("class_names"))
    if len(class_names) != num_classes or not all(isinstance(c, str) and c for c in class_names):
        raise BundleError(
            f"{where}: class_names must be {num_classes} non-empty strings (num_classes), got "
            f"{list(class_names)!r}"
        )

    inp = top.obj("input")
    input_shape = inp.shape("shape")
    if len(input_shape) != 4 or input_shape[0] != 1 or input_shape[3] != 3:
        raise BundleError(f"{where}: input.shape must be [1, H, W, 3], got {list(input_shape)}")
    if inp.dtype("dtype") != np.float32:
        raise BundleError(f"{where}: input.dtype must be float32 in format 1")
    value_range = inp.get("range", [0.0, 1.0])
    if list(value_range) != [0.0, 1.0] and list(value_range) != [0, 1]:
        raise BundleError(f"{where}: input.range must be [0, 1] in format 1, got {value_range!r}")
    if inp.get("color_order", "RGB") != "RGB":
        raise BundleError(f"{where}: input.color_order must be RGB in format 1")

    bottleneck = top.obj("bottleneck")
    head = top.obj("head")
    parameters = tuple(
        _tensor(p, f"parameters[{i}]", where) for i, p in enumerate(top.items("parameters"))
    )
    if not parameters:
        raise BundleError(f"{where}: parameters is empty; the head has nothing to train")

    opt = top.obj("optimizer")
    optimizer = OptimizerSpec(
        kind=opt.text("kind"),
        hyperparameters=_hyperparameters(opt, where),
        state=tuple(
            _state(s, f"optimizer.state[{j}]", where) for j, s in enumerate(opt.items("state"))
        ),
    )
    train = top.obj("train")
    models_doc = top.obj("models")
    models = {}
    for name in MODEL_NAMES:
        m = models_doc.obj(name)
        path = f"models.{name}"
        models[name] = ModelSpec(
            name=name,
            file=m.text("file"),
            requires_flex=m.flag("requires_flex", False),
            inputs=tuple(
                _tensor(t, f"{path}.inputs[{i}]", where, allow_batch=True)
                for i, t in enumerate(m.items("inputs"))
            ),
            outputs=tuple(
                _tensor(t, f"{path}.outputs[{i}]", where, allow_batch=True)
                for i, t in enumerate(m.items("outputs"))
            ),
        )
        if models[name].file not in files:
            raise BundleError(f"{where}: {path}.file {models[name].file!r} is not listed in files")

    manifest = Manifest(
        format_version=version,
        bundle_id=bundle_id,
        created=top.get("created", {}),
        num_classes=num_classes,
        class_names=class_names,
        input_shape=input_shape,
        base=top.get("base", {}),
        bottleneck_shape=bottleneck.shape("shape"),
        head_kind=head.text("kind"),
        imprintable=head.flag("imprintable", False),
        parameters=parameters,
        optimizer=optimizer,
        max_batch_size=train.integer("max_batch_size", minimum=1),
        dynamic_batch=train.flag("dynamic_batch", False),
        requires_flex=top.flag("requires_flex", False),
        models=models,
        files=files,
    )
    _check_signatures(manifest, where)
    return manifest


def _check_signatures(m: Manifest, where: str) -> None:
    """Check that each model's listed signature is the one docs/bundle-format.md defines."""
    n_params, n_state = len(m.parameters), len(m.optimizer.state)
    batch = (-1,) if m.dynamic_batch else (m.max_batch_size,)
    bshape = m.bottleneck_shape
    params = [(f"param_{i}", p.shape) for i, p in enumerate(m.parameters)]
    grads = [(f"grad_{i}", p.shape) for i, p in enumerate(m.parameters)]
    expected = {
        "bottleneck": ([("image", m.input_shape)], [("bottleneck", (1, *bshape))]),
        "initialize": ([("zero", ())], params),
        "train_head": (
            [("bottlenecks", batch + bshape), ("labels", batch + (m.num_classes,)), *params],
            [("loss", ()), *grads],
        ),
        "inference": (
            [("bottleneck", (1, *bshape)), *params],
            [("probabilities", (1, m.num_classes))],
        ),
        "optimizer": (
            [*params, *grads, *((f"state_{j}", s.shape) for j, s in enumerate(m.optimizer.state))],
            [
                *((f"new_param_{i}", p.shape) for i, p in enumerate(m.parameters)),
                *((f"new_state_{j}", s.shape) for j, s in enumerate(m.optimizer.state)),
            ],
        ),
    }
    for name, (want_in, want_out) in expected.items():
        spec = m.models[name]
        for kind, listed, want in (
            ("inputs", spec.inputs, want_in),
            ("outputs", spec.outputs, want_out),
        ):
            got = {t.name: t.shape for t in listed}
            for tensor_name, shape in want:
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
            if len(got) != len(want):
                extra = sorted(set(got) - {t for t, _ in want})
                raise BundleError(f"{where}: models.{name}.{kind} has unexpected {extra}")
    if n_params and any(p.dtype != np.float32 for p in m.parameters):
        raise BundleError(f"{where}: parameters must be float32 in format 1")
    if n_state and any(s.dtype != np.float32 for s in m.optimizer.state):
        raise BundleError(f"{where}: optimizer.state must be float32 in format 1")
