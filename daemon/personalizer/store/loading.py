"""Bringing a state database and a runtime model together, at start and after an import.

- the classes of the database win over the config's: they may have been added, renamed or
  removed on the board, and a removed class stays removed. The config's classes only seed a
  new state (a database that never had classes); those that the board has since removed or
  renamed are reported (:func:`config_drift`);
- samples embedded with another bundle are embedded again from their stored images
  (reembedding.py); without images that is impossible, so the state is set aside;
- the samples are attached to the model as rows it reads when it uses them, and the saved head
  is restored when it belongs to the bundle.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import SamplesChanged, StateFileError
from ..model.class_registry import first_free_slot
from ..model.head_state import HeadState
from .sample_reader import SampleReader
from .sqlite_file import StateDatabase

log = logging.getLogger(__name__)

Progress = Callable[[str | None], None]
CONFIG_CLASSES = "config_classes"  # meta: the config's classes when they seeded the state
ATTACH_ATTEMPTS = 3


class LoadableModel(Protocol):
    """What loading needs of the runtime model (TransferLearningModel)."""

    bundle_id: str
    bottleneck_shape: tuple[int, ...]
    capacity: int

    def class_slots(self) -> dict[int, str]:
        """slot -> name of the active classes."""
        ...

    def set_classes(self, slots: Mapping[int, str]) -> None:
        """Replace the active classes."""
        ...

    def restore_samples(
        self, ids: list[int], slots: list[int], bottlenecks: list[np.ndarray], next_id: int
    ) -> None:
        """Replace every sample (held in memory)."""
        ...

    def attach_samples(
        self, source: SampleReader, ids: list[int], slots: list[int], next_id: int
    ) -> None:
        """Replace every sample with those in ``source`` (read from it when used)."""
        ...

    def remove_sample(self, sample_id: int) -> Any:
        """Forget one sample."""
        ...

    def head(self) -> HeadState:
        """The head as it is now (parameters, optimizer state, counters)."""
        ...

    def restore_head(self, saved: HeadState) -> bool:
        """Take a saved head; False when it does not fit the bundle."""
        ...

    def bottleneck(self, image: Any) -> np.ndarray:
        """The bottleneck of an image."""
        ...

    def reset_parameters(self) -> None:
        """Start the head afresh."""
        ...


@dataclass(frozen=True)
class LoadOutcome:
    """What happened at start: loaded, fresh, set aside, migrated, re-embedded (and why)."""

    loaded: bool
    warnings: tuple[str, ...] = ()
    set_aside: Path | None = None
    merged: bool = False  # samples were merged in by `personalizer import --merge`


def fit_classes(
    db: StateDatabase, model: LoadableModel, configured: Sequence[str], warnings: list[str]
) -> dict[int, str]:
    """The classes to run with: the stored ones within the bundle's capacity, or, for a state
    that never had classes, the configured ones (``configured``, already the model's)."""
    stored = db.classes.all()
    if not stored and db.meta(CONFIG_CLASSES) is None:
        slots = model.class_slots()
        db.set_meta({CONFIG_CLASSES: list(configured)})
        db.classes.replace(slots)
        return slots
    slots = dict(stored)
    for slot, name in sorted((s, n) for s, n in stored.items() if s >= model.capacity):
        del slots[slot]
        free = first_free_slot(slots, model.capacity)
        if free is not None:
            slots[free] = name
            db.classes.move(slot, free)
        else:
            removed = db.classes.remove(slot)
            warnings.append(
                f"class {name!r} no longer fits the bundle's {model.capacity} class slots: "
                f"it and its {removed} sample(s) were removed"
            )
    return dict(sorted(slots.items()))


def config_drift(configured: Sequence[str], current: Sequence[str]) -> list[str]:
    """What to say about configured classes the board no longer has (removed or renamed on
    the board; `[model] classes` only seeds a new state)."""
    missing = [name for name in configured if name not in current]
    if not missing:
        return []
    return [
        f"[model] classes lists {', '.join(repr(n) for n in missing)}, which the board no longer "
        "has (removed or renamed on the board, which wins); add it again on the board, or edit "
        "the config to match"
    ]


def board_classes(path: Path) -> dict[int, str] | None:
    """The classes kept in the state database at ``path``, read without changing anything
    (None: there is no readable state yet)."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = db.execute("SELECT slot, name FROM classes ORDER BY slot").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return {int(slot): str(name) for slot, name in rows}


def attach_samples(
    db: StateDatabase, model: LoadableModel, reader: SampleReader, quarantine: Callable[[], Any]
) -> None:
    """Give ``model`` the samples as rows it reads from ``reader`` when it uses them (its
    memory then does not grow with the samples). Damaged rows found on the way are set aside
    (``quarantine()``) and the samples that remain are attached."""
    for _ in range(ATTACH_ATTEMPTS):
        ids, slots = db.samples.index()
        try:
            model.attach_samples(reader, ids, slots, db.samples.next_id())
            return
        except SamplesChanged:
            quarantine()
    raise StateFileError(f"{db.path}: the samples kept changing while they were loaded")


def restore_head(db: StateDatabase, model: LoadableModel, warnings: list[str]) -> bool:
    """Give ``model`` the saved head when it belongs to its bundle and fits."""
    saved = db.head.load()
    if saved is None or saved.bundle_id != model.bundle_id:
        return False
    if model.restore_head(saved):
        return True
    warnings.append(
        f"the saved head in {db.path} does not fit bundle {model.bundle_id}; the head starts "
        "from the samples again"
    )
    return False


def mark_embedded(db: StateDatabase, model: LoadableModel) -> None:
    """Record that the stored bottlenecks are those of ``model``'s bundle."""
    db.set_meta(
        {"samples_bundle": model.bundle_id, "bottleneck_shape": list(model.bottleneck_shape)}
    )
