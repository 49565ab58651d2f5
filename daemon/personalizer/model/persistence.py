"""``TransferLearningModel.save`` / ``load``: the whole model state in one state database file.

The file is the same SQLite state database the daemon keeps (personalizer.store.database):
classes and their slots, every sample (ids kept), the parameters, the optimizer state and the
counters. It is written to a temporary file beside the target, synced, and renamed over it, so
a reader sees the old file or the new one, never a mix. ``save -> load`` gives bitwise-equal
parameters, optimizer state and samples. Nothing is pickled.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StateBundleMismatch, StateFileNotFound
from ..store.database import Parameters, StateDatabase


@dataclass(frozen=True)
class ModelState:
    """What a saved model holds."""

    bundle_id: str
    bottleneck_shape: tuple[int, ...]
    classes: dict[int, str]  # slot -> name
    ids: list[int]
    slots: list[int]
    bottlenecks: Sequence[np.ndarray]
    next_id: int
    head: Parameters | None


def write_model_state(path: str | Path, state: ModelState) -> None:
    """Write ``state`` to ``path`` atomically."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        db = StateDatabase(tmp, check=False, wal=False)
        try:
            db.set_classes(state.classes)
            db.add_samples(
                (sample_id, slot, bottleneck, "api", 0.0, None)
                for sample_id, slot, bottleneck in zip(
                    state.ids, state.slots, state.bottlenecks, strict=True
                )
            )
            db.set_next_sample_id(state.next_id)
            db.set_meta(
                {
                    "samples_bundle": state.bundle_id,
                    "bottleneck_shape": list(state.bottleneck_shape),
                }
            )
            if state.head is not None:
                db.save_parameters(state.head)
        finally:
            db.close()  # folds the WAL into the file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def read_model_state(path: str | Path, bundle_id: str) -> ModelState:
    """Read a file written by :func:`write_model_state` for the bundle ``bundle_id``.

    Raises:
        StateFileNotFound: no file at ``path``.
        StateFileError: not a state file, or damaged.
        StateBundleMismatch: it belongs to another bundle.
    """
    source = Path(path)
    if not source.is_file():
        raise StateFileNotFound(f"no state file at {source}")
    db = StateDatabase(source, wal=False)
    try:
        saved_for = db.meta("samples_bundle")
        if saved_for is not None and saved_for != bundle_id:
            raise StateBundleMismatch(
                f"{source} holds state for bundle {saved_for}, but the loaded bundle is "
                f"{bundle_id}; samples and parameters of another model cannot be reused. Move "
                "the file aside (or delete it) to start fresh, or load the bundle it was made with"
            )
        shape = tuple(db.meta_json("bottleneck_shape", []))
        ids, slots, bottlenecks = db.sample_arrays(shape)
        return ModelState(
            bundle_id=bundle_id,
            bottleneck_shape=shape,
            classes=db.classes(),
            ids=ids,
            slots=slots,
            bottlenecks=bottlenecks,
            next_id=db.next_sample_id(),
            head=db.load_parameters(),
        )
    finally:
        db.close()


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
