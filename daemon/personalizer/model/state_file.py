"""Read and write a model's state: parameters, optimizer state, step count and samples.

The file is an ``.npz`` (a zip of ``.npy`` arrays) that ``numpy.load(path, allow_pickle=False)``
opens, but it is written here rather than by ``numpy.savez``, for two reasons:

- Identical state gives identical bytes (``save -> load -> save``): every zip entry gets the same
  fixed timestamp and attributes, entries are stored (not deflated) in a fixed order, and the
  metadata is canonical JSON.
- Samples are streamed into the archive one bottleneck at a time, so saving 1000 MobileNetV2
  samples never needs a second 250 MB copy of them in memory.

Writes are atomic: a temporary file in the same folder, fsync, ``os.replace``, fsync the folder.
A reader either sees the old file or the new one, also after a power cut. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import StateBundleMismatch, StateFileError, StateFileNotFound

FORMAT_TAG = "personalizer-state"
FORMAT_VERSION = 1
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip epoch: no wall-clock time in the bytes
_ZIP64_LIMIT = (1 << 31) - 1
_META = "meta.npy"
_IDS = "sample_ids.npy"
_LABELS = "sample_labels.npy"
_BOTTLENECKS = "sample_bottlenecks.npy"


@dataclass(frozen=True)
class ModelState:
    """Everything a model needs to continue where it stopped, tied to one bundle."""

    bundle_id: str
    classes: tuple[str, ...]
    bottleneck_shape: tuple[int, ...]
    parameters: tuple[np.ndarray, ...]
    optimizer_state: tuple[np.ndarray, ...]
    steps: int
    epochs: int
    next_sample_id: int
    sample_ids: np.ndarray  # int64 (N,)
    sample_labels: np.ndarray  # int32 (N,), index into classes
    sample_bottlenecks: Sequence[np.ndarray]  # N float32 arrays of bottleneck_shape

    def __post_init__(self) -> None:
        n = len(self.sample_bottlenecks)
        if self.sample_ids.shape != (n,) or self.sample_labels.shape != (n,):
            raise ValueError(
                f"state has {n} bottlenecks but ids {self.sample_ids.shape} and labels "
                f"{self.sample_labels.shape}"
            )


def _param_entry(i: int) -> str:
    return f"param_{i}.npy"


def _state_entry(j: int) -> str:
    return f"optimizer_state_{j}.npy"


# --- writing ------------------------------------------------------------------------------------


def write_state(path: str | Path, state: ModelState) -> None:
    """Write ``state`` to ``path`` atomically, byte-for-byte reproducibly."""
    meta = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "bundle_id": state.bundle_id,
        "classes": list(state.classes),
        "bottleneck_shape": list(state.bottleneck_shape),
        "num_parameters": len(state.parameters),
        "num_optimizer_state": len(state.optimizer_state),
        "num_samples": len(state.sample_bottlenecks),
        "steps": int(state.steps),
        "epochs": int(state.epochs),
        "next_sample_id": int(state.next_sample_id),
    }
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()

    def write(stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
            _put(archive, _META, np.frombuffer(meta_bytes, dtype=np.uint8))
            for i, array in enumerate(state.parameters):
                _put(archive, _param_entry(i), np.asarray(array, dtype=np.float32, order="C"))
            for j, array in enumerate(state.optimizer_state):
                _put(archive, _state_entry(j), np.asarray(array, dtype=np.float32, order="C"))
            _put(archive, _IDS, np.asarray(state.sample_ids, dtype=np.int64, order="C"))
            _put(archive, _LABELS, np.asarray(state.sample_labels, dtype=np.int32, order="C"))
            _put_rows(archive, _BOTTLENECKS, state.sample_bottlenecks, state.bottleneck_shape)

    atomic_write(Path(path), write)


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # unix, whatever the host: the bytes must not depend on it
    return info


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    import io

    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _put(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    _put_rows(archive, name, [array], array.shape, stacked=False)


def _put_rows(
    archive: zipfile.ZipFile,
    name: str,
    rows: Sequence[np.ndarray],
    row_shape: tuple[int, ...],
    stacked: bool = True,
) -> None:
    """Write one ``.npy`` entry from ``rows`` (stacked along a new first axis) without a copy."""
    dtype = np.dtype(np.float32) if stacked else np.dtype(rows[0].dtype).newbyteorder("<")
    shape = (len(rows), *row_shape) if stacked else tuple(row_shape)
    header = _npy_header(dtype, shape)
    size = len(header) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    info = _zip_info(name)
    info.file_size = size
    with archive.open(info, "w", force_zip64=size > _ZIP64_LIMIT) as entry:
        entry.write(header)
        for row in rows:
            if row.shape != (tuple(row_shape) if stacked else tuple(shape)):
                raise ValueError(f"{name}: row of shape {row.shape}, expected {row_shape}")
            entry.write(np.asarray(row, dtype=dtype, order="C").data)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Create ``path`` with the bytes ``write(stream)`` produces, atomically and durably.

    The data goes to a temporary file in the same folder (so the rename cannot cross file
    systems), which is fsynced and renamed over ``path``; then the folder is fsynced so the
    rename itself survives a power cut. On any error the temporary file is removed and ``path``
    is untouched.
    """
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(folder, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------------------


def read_state(path: str | Path, expect_bundle_id: str | None = None) -> ModelState:
    """Read a state file written by :func:`write_state`.

    With ``expect_bundle_id``, a state made for another bundle raises
    :class:`StateBundleMismatch` before any array is read.

    Raises:
        StateFileNotFound: no file at ``path``.
        StateFileError: the file is truncated, corrupt, or not a personalizer state file.
        StateBundleMismatch: the state belongs to another bundle.
    """
    path = Path(path)
    if not path.is_file():
        raise StateFileNotFound(f"no state file at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if _META not in names:
                raise _not_ours(path, "it has no meta.npy entry")
            meta = _read_meta(archive, path)
            if expect_bundle_id is not None and meta["bundle_id"] != expect_bundle_id:
                raise StateBundleMismatch(
                    f"{path} holds state for bundle {meta['bundle_id']}, but the loaded bundle "
                    f"is {expect_bundle_id}; samples and parameters of another model cannot be "
                    "reused. Move the file aside (or delete it) to start fresh, or load the "
                    "bundle it was made with"
                )
            required = [
                _IDS,
                _LABELS,
                _BOTTLENECKS,
                *(_param_entry(i) for i in range(meta["num_parameters"])),
                *(_state_entry(j) for j in range(meta["num_optimizer_state"])),
            ]
            missing = [name for name in required if name not in names]
            if missing:
                raise StateFileError(f"{path} is incomplete: entries {missing} are missing")
            parameters = tuple(
                _read_array(archive, path, _param_entry(i), np.float32)
                for i in range(meta["num_parameters"])
            )
            optimizer_state = tuple(
                _read_array(archive, path, _state_entry(j), np.float32)
                for j in range(meta["num_optimizer_state"])
            )
            ids = _read_array(archive, path, _IDS, np.int64)
            labels = _read_array(archive, path, _LABELS, np.int32)
            bottlenecks = _read_array(archive, path, _BOTTLENECKS, np.float32)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise StateFileError(
            f"{path} is truncated or corrupt ({err}); move it aside and start fresh"
        ) from err

    n = meta["num_samples"]
    shape = tuple(meta["bottleneck_shape"])
    if ids.shape != (n,) or labels.shape != (n,) or bottlenecks.shape != (n, *shape):
        raise StateFileError(
            f"{path} is inconsistent: meta says {n} samples of {list(shape)}, the arrays hold "
            f"ids {list(ids.shape)}, labels {list(labels.shape)}, bottlenecks "
            f"{list(bottlenecks.shape)}"
        )
    if n and (labels.min() < 0 or labels.max() >= len(meta["classes"])):
        raise StateFileError(
            f"{path}: a sample label is outside the {len(meta['classes'])} classes"
        )
    if len(np.unique(ids)) != n or (n and ids.max() >= meta["next_sample_id"]):
        raise StateFileError(f"{path}: sample ids are not unique or exceed next_sample_id")
    return ModelState(
        bundle_id=meta["bundle_id"],
        classes=tuple(meta["classes"]),
        bottleneck_shape=shape,
        parameters=parameters,
        optimizer_state=optimizer_state,
        steps=meta["steps"],
        epochs=meta["epochs"],
        next_sample_id=meta["next_sample_id"],
        sample_ids=ids,
        sample_labels=labels,
        # Views into the one array read from disk: no second copy of the samples.
        sample_bottlenecks=list(bottlenecks),
    )


def _not_ours(path: Path, why: str) -> StateFileError:
    return StateFileError(f"{path} is not a personalizer state file ({why})")


def _read_array(archive: zipfile.ZipFile, path: Path, name: str, dtype: Any) -> np.ndarray:
    with archive.open(name) as entry:
        try:
            array = np.lib.format.read_array(entry, allow_pickle=False)
        except ValueError as err:
            raise StateFileError(f"{path}: entry {name} is not a plain array ({err})") from err
    if array.dtype != np.dtype(dtype):
        raise StateFileError(f"{path}: entry {name} is {array.dtype}, expected {np.dtype(dtype)}")
    return array


def _read_meta(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    raw = _read_array(archive, path, _META, np.uint8)
    try:
        meta = json.loads(raw.tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _not_ours(path, f"meta.npy is not JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise _not_ours(
            path, f"format tag is {meta.get('format') if isinstance(meta, dict) else meta!r}"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise StateFileError(
            f"{path} has state format version {meta.get('format_version')!r}; this runtime "
            f"reads version {FORMAT_VERSION}. Upgrade the personalizer package or start fresh"
        )
    kinds = {
        "bundle_id": str,
        "classes": list,
        "bottleneck_shape": list,
        "num_parameters": int,
        "num_optimizer_state": int,
        "num_samples": int,
        "steps": int,
        "epochs": int,
        "next_sample_id": int,
    }
    for key, kind in kinds.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise StateFileError(f"{path}: meta field {key!r} is {value!r}, not a {kind.__name__}")
    return meta
