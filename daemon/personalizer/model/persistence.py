"""``TransferLearningModel.save`` / ``load``: the whole model state in one state database file.

The file is the same SQLite state database the daemon keeps (store/sqlite_file.py and its tables):
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
from typing import Any, Protocol

import numpy as np

from ..errors import StateBundleMismatch, StateFileError, StateFileNotFound
from ..store.sqlite_file import StateDatabase
from .head_state import HeadState


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
    head: HeadState | None


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
            db.classes.replace(state.classes)
            db.samples.add_many(
                (sample_id, slot, bottleneck, "api", 0.0, None)
                for sample_id, slot, bottleneck in zip(
                    state.ids, state.slots, state.bottlenecks, strict=True
                )
            )
            db.samples.set_next_id(state.next_id)
            db.set_meta(
                {
                    "samples_bundle": state.bundle_id,
                    "bottleneck_shape": list(state.bottleneck_shape),
                }
            )
            if state.head is not None:
                db.head.save(state.head)
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
        ids, slots, bottlenecks = db.samples.arrays(shape)
        return ModelState(
            bundle_id=bundle_id,
            bottleneck_shape=shape,
            classes=db.classes.all(),
            ids=ids,
            slots=slots,
            bottlenecks=bottlenecks,
            next_id=db.samples.next_id(),
            head=db.head.load(),
        )
    finally:
        db.close()


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PersistentModel(Protocol):
    """What saving and loading need of the model (TransferLearningModel)."""

    bundle_id: str
    bottleneck_shape: tuple[int, ...]
    next_sample_id: int

    def head(self) -> HeadState:
        """The head as it is now."""
        ...

    def fits(self, saved: HeadState) -> bool:
        """Whether a saved head has the bundle's shapes."""
        ...

    def sample_snapshot(self) -> Any:
        """The samples as they are now."""
        ...

    def class_slots(self) -> dict[int, str]:
        """slot -> class name."""
        ...

    def set_classes(self, slots: dict[int, str]) -> None:
        """Replace the classes."""
        ...

    def restore_samples(
        self, ids: list[int], slots: list[int], bottlenecks: list[np.ndarray], next_id: int
    ) -> None:
        """Replace every sample."""
        ...

    def restore_head(self, saved: HeadState) -> bool:
        """Take a saved head."""
        ...

    def reset_parameters(self) -> None:
        """Start the head afresh."""
        ...


def save_model(model: PersistentModel, path: str | Path) -> None:
    """Write ``model``'s classes, samples and head to ``path`` (see the module doc)."""
    head = model.head()
    snapshot = model.sample_snapshot()
    state = ModelState(
        bundle_id=model.bundle_id,
        bottleneck_shape=model.bottleneck_shape,
        classes=model.class_slots(),
        ids=[int(i) for i in snapshot.ids],
        slots=[int(s) for s in snapshot.labels],
        bottlenecks=snapshot.bottlenecks,
        next_id=model.next_sample_id,
        head=head,
    )
    write_model_state(path, state)


def load_model(model: PersistentModel, path: str | Path) -> None:
    """Replace ``model``'s classes, samples and head with those saved at ``path``."""
    state = read_model_state(path, model.bundle_id)
    if state.ids and tuple(state.bottleneck_shape) != tuple(model.bottleneck_shape):
        raise StateFileError(
            f"{path}: bottleneck shape {list(state.bottleneck_shape)} is not the bundle's "
            f"{list(model.bottleneck_shape)}"
        )
    if state.head is not None and not model.fits(state.head):
        raise StateFileError(
            f"{path}: parameter shapes {[list(a.shape) for a in state.head.parameters]} do "
            "not match the bundle's"
        )
    model.set_classes(state.classes)
    model.restore_samples(state.ids, state.slots, list(state.bottlenecks), state.next_id)
    if state.head is not None:
        model.restore_head(state.head)
    else:
        model.reset_parameters()
