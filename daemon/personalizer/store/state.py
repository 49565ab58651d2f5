"""The state folder (systemd's StateDirectory): the daemon's samples, classes and head on disk.

One SQLite database, ``state.db`` (sqlite_file.py and its tables). :meth:`StateStore.open`
brings it and the runtime model together at start (loading.py):

- no database yet, but a ``state.npz`` of an older version: it is imported (and kept, renamed, as
  a backup);
- a database that SQLite cannot read or that fails its check: it is moved aside with the reason
  and the time in its name, reported, and the daemon starts fresh;
- samples embedded with another bundle are embedded again from their stored images
  (reembedding.py); without images that is impossible, so they are set aside;
- a sample row whose checksum fails, found whenever it is read, is moved to the table
  ``set_aside_samples`` and taken out of the model (:meth:`set_aside_damaged`); the status names it.

While running, a sample is one durable INSERT before it is acknowledged (:meth:`add_sample`);
the head is written in one transaction (:meth:`save`: autosave, training stop, shutdown). A
change made by another process (`personalizer import`) is noticed by :meth:`changed_elsewhere`
and loaded by :meth:`reload`.

Threads: the command thread writes, the trainer thread saves the head, and a reload swaps the
database; ``lock`` is held around every use of :attr:`db` and every swap, so none of them sees a
closed or half-replaced database. Lock order: this lock, then the model's locks (a save reads the
head). Nothing here is ever called with a model lock held: a damaged row found while training
only queues its id (under a lock of its own, the innermost) for the command thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DamagedSampleError, StateFileError, StateWriteError
from .damaged import DamagedRows
from .damaged import warning as damaged_warning
from .folder import STATE_DB, StateDirError, prepare_folder, set_aside
from .legacy import LEGACY_STATE, migrate
from .loading import (
    LoadableModel,
    LoadOutcome,
    Progress,
    attach_samples,
    config_drift,
    fit_classes,
    mark_embedded,
    restore_head,
)
from .reembedding import reembed, samples_without_image
from .review_table import ReviewTable
from .sample_reader import SampleReader
from .samples_table import SampleInfo
from .sqlite_file import StateDatabase

log = logging.getLogger(__name__)

__all__ = ["STATE_DB", "StateDirError", "StateStore"]

REGION = "region"  # meta: [x, y, width, height] as fractions, or null (the whole frame)
LAST_CYCLE = "last_cycle"  # meta: how the last training cycle ended, or null (never trained)


class StateStore:
    """The state folder of one daemon."""

    def __init__(
        self,
        directory: Path,
        store_images: bool = True,
        configured_classes: Sequence[str] = (),
        configured_region: Sequence[float] = (),
    ) -> None:
        """The state in ``directory``; ``configured_classes`` and ``configured_region`` (the
        config's) seed a new state."""
        self.directory = Path(directory)
        self.path = self.directory / STATE_DB
        self.store_images = store_images
        self.configured_classes = tuple(configured_classes)
        self.configured_region = list(configured_region)
        self.db: StateDatabase | None = None
        self.lock = threading.RLock()
        self.last_save: float | None = None
        # Set while the newest head is not on disk (the last save failed): the status reports
        # it and the service retries; cleared by the next save that works.
        self.error: str | None = None
        self.last_failure: float | None = None
        # The last other write (a sample, a class change) that failed, until one works again.
        self.write_error: str | None = None
        self._data_version = 0
        self._reader: SampleReader | None = None
        self._model: LoadableModel | None = None
        self._damaged = DamagedRows(self._forget_sample)
        self.loads = 0  # how often the state was (re)loaded: followers (the fleet) reread it

    # --- the folder -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folder (0700) if needed and check it is writable (StateDirError)."""
        prepare_folder(self.directory)

    def _set_aside(self, reason: str) -> Path:
        """Close the database and move it (and its WAL) aside as ``state.db.<reason>-<time>``."""
        self._close_db()
        return set_aside(self.path, reason)

    def _corrupt(self, exc: Exception) -> tuple[str, Path]:
        """Set an unusable database aside; the warning that says so, and where it went."""
        target = self._set_aside("corrupt")
        warning = (
            f"state database {self.path} is corrupt or not a state file ({exc}); moved it "
            f"to {target.name} and started fresh (delete it once you no longer need it)"
        )
        log.warning("%s", warning)
        return warning, target

    # --- start ----------------------------------------------------------------------------------

    def open(self, model: LoadableModel, progress: Progress | None = None) -> LoadOutcome:
        """Open the database and bring it and ``model`` together (see the module doc)."""
        progress = progress or (lambda text: None)
        with self.lock:
            self._model = model
            fresh = not self.path.exists()
            warnings: list[str] = []
            set_aside: Path | None = None
            try:
                self.db = StateDatabase(self.path)
            except StateFileError as exc:
                warning, set_aside = self._corrupt(exc)
                warnings.append(warning)
                self.db = StateDatabase(self.path)
            os.chmod(self.path, 0o600)
            legacy = self.directory / LEGACY_STATE
            if fresh and legacy.exists():
                warnings += migrate(legacy, self.db, model)
            try:
                outcome = self._load(model, progress)
            except StateFileError as exc:
                warning, set_aside = self._corrupt(exc)
                self.db = StateDatabase(self.path)
                model.restore_samples([], [], [], 1)
                model.reset_parameters()
                outcome = self._load(model, progress)
                warnings.append(warning)
            return LoadOutcome(
                outcome.loaded, tuple(warnings) + outcome.warnings, set_aside or outcome.set_aside
            )

    def _load(self, model: LoadableModel, progress: Progress) -> LoadOutcome:
        """Load the database into ``model`` (lock held). Its data version is read first, so a
        commit of another process during the load is noticed afterwards, never swallowed."""
        db = self._db()
        self._data_version = db.data_version
        self.loads += 1
        warnings: list[str] = []
        slots = fit_classes(db, model, self.configured_classes, warnings)
        model.set_classes(slots)
        warnings += config_drift(self.configured_classes, list(slots.values()))
        if db.meta(REGION) is None:  # a new state: the config's region seeds it
            db.set_meta({REGION: self.configured_region or None})
        samples_bundle = db.meta("samples_bundle")
        shape = tuple(db.meta_json("bottleneck_shape", []))
        total = sum(db.samples.counts().values())
        if total and samples_bundle != model.bundle_id:
            set_aside = self._reembed(model, progress, warnings)
            if set_aside is not None:
                return LoadOutcome(False, tuple(warnings), set_aside)
        elif total and shape != tuple(model.bottleneck_shape):
            raise StateFileError(
                f"{self.path}: bottlenecks of shape {list(shape)} for bundle {samples_bundle}, "
                f"which now gives {list(model.bottleneck_shape)}"
            )
        mark_embedded(self._db(), model)
        self._attach(model)
        warnings += self.set_aside_damaged()
        head_loaded = restore_head(self._db(), model, warnings)
        loaded = bool(total) or head_loaded
        if loaded:
            log.info(
                "loaded %d sample(s)%s from %s",
                sum(self._db().samples.counts().values()),
                " and the trained head" if head_loaded else "",
                self.path,
            )
        else:
            log.info("no saved state in %s: starting fresh", self.directory)
        return LoadOutcome(loaded, tuple(warnings))

    def _reembed(
        self, model: LoadableModel, progress: Progress, warnings: list[str]
    ) -> Path | None:
        """Embed every stored sample again with the model's bundle; when that is impossible,
        set the state aside, start fresh and return where it went."""
        db = self._db()
        total = sum(db.samples.counts().values())
        missing = samples_without_image(db)
        old = db.meta("samples_bundle")
        if missing:
            target = self._set_aside("other-bundle")
            warning = (
                f"the bundle changed ({old} -> {model.bundle_id}) and {missing} of {total} "
                "sample(s) have no stored image (state.store_images = false, or from an older "
                f"version), so they cannot be embedded again; the state was moved to "
                f"{target.name} and the daemon started fresh"
            )
            log.warning("%s", warning)
            warnings.append(warning)
            self.db = StateDatabase(self.path)
            self._data_version = self.db.data_version  # a new connection: its own count
            self.db.classes.replace(model.class_slots())
            mark_embedded(self.db, model)
            model.restore_samples([], [], [], 1)
            return target
        warnings.append(
            reembed(db, model.bundle_id, model.bottleneck, progress, self._found_damaged)
        )
        return None

    def _attach(self, model: LoadableModel) -> None:
        """Attach the samples to ``model`` through a new reader; the old one closes (snapshots
        still reading it start again on the new one)."""
        reader = SampleReader(self.path, model.bottleneck_shape, self._found_damaged)
        try:
            attach_samples(self._db(), model, reader, self.set_aside_damaged)
        except BaseException:
            reader.close()
            raise
        if self._reader is not None:
            self._reader.close()
        self._reader = reader

    # --- damaged rows ---------------------------------------------------------------------------

    def _found_damaged(self, damaged: dict[int, str]) -> None:
        self._damaged.found(damaged)

    def set_aside_damaged(self) -> list[str]:
        """Move the damaged rows found so far to ``set_aside_samples``; the warnings naming them."""
        damaged = self._damaged.take()
        if not damaged:
            return []
        moved = self.write(
            "setting damaged samples aside", lambda db: db.samples.set_aside(damaged, time.time())
        )
        classes = self._model.class_slots() if self._model is not None else {}
        warnings = [
            damaged_warning(info, classes.get(info.slot), damaged[info.id], self.path)
            for info in moved
        ]
        for text in warnings:
            log.warning("%s", text)
        return warnings

    # --- while running --------------------------------------------------------------------------

    def _forget_sample(self, sample_id: int) -> None:
        if self._model is not None:
            self._model.remove_sample(sample_id)

    def _db(self) -> StateDatabase:
        if self.db is None:
            raise StateFileError("the state database is not open")
        return self.db

    def write(self, what: str, action: Callable[[StateDatabase], Any]) -> Any:
        """Run one change of the database (``what`` it does, for the message when it fails);
        a failure is remembered for the status."""
        with self.lock:
            try:
                result = action(self._db())
            except StateWriteError as exc:
                self.write_error = (
                    f"{what} failed ({exc}); nothing was changed; check the free space and "
                    f"permissions of state.dir ({self.directory})"
                )
                raise
            self.write_error = None
            return result

    def read(self, action: Callable[[StateDatabase], Any]) -> Any:
        """Run ``action`` on the database under the store's lock (reads only)."""
        with self.lock:
            return action(self._db())

    def add_sample(
        self, slot: int, bottleneck: np.ndarray, source: str, created: float, jpeg: bytes | None
    ) -> int:
        """Store one sample durably; returns its id. StateWriteError (an OSError) on failure."""
        image = jpeg if self.store_images else None
        return int(
            self.write(
                "storing the sample",
                lambda db: db.samples.add(slot, bottleneck, source, created, image),
            )
        )

    def delete_sample(self, sample_id: int) -> bool:
        """Delete one sample (one transaction); False when there was none."""
        return bool(self.write("deleting a sample", lambda db: db.samples.delete(sample_id)))

    def relabel(self, sample_id: int, slot: int) -> bool:
        """Move one sample to class slot ``slot`` (one transaction)."""
        return bool(
            self.write("relabelling a sample", lambda db: db.samples.relabel(sample_id, slot))
        )

    def delete_samples(self, slot: int | None) -> int:
        """Delete one class slot's samples, or all (``None``), in one transaction."""
        return int(self.write("deleting samples", lambda db: db.samples.delete_class(slot)))

    def set_classes(self, slots: Mapping[int, str]) -> None:
        """Store the classes (slot -> name) in one transaction."""
        self.write("storing the classes", lambda db: db.classes.replace(slots))

    def remove_class(self, slot: int) -> int:
        """Remove a class and its samples in one transaction; returns the samples removed."""
        return int(self.write("removing a class", lambda db: db.classes.remove(slot)))

    def clear_head(self) -> None:
        """Forget the saved head (after a reset of everything)."""
        self.write("clearing the head", lambda db: db.head.clear())

    def list_samples(
        self, slot: int | None, offset: int, limit: int
    ) -> tuple[list[SampleInfo], int]:
        """A page of samples and the total (see SampleTable.page)."""
        with self.lock:
            return self._db().samples.page(slot, offset, limit)

    def image(self, sample_id: int) -> bytes | None:
        """The stored JPEG of one sample, or None; a damaged row is set aside and raises
        DamagedSampleError."""
        try:
            with self.lock:
                return self._db().samples.image(sample_id)
        except DamagedSampleError as exc:
            self._found_damaged({exc.sample_id: exc.why})
            raise

    @property
    def review(self) -> ReviewTable:
        """The frames kept for review (their table; use it from the command thread)."""
        return self._db().review

    def kept(self, key: str) -> Any:
        """A setting the state keeps beside the samples (``REGION``, ``LAST_CYCLE``: JSON
        values), or None when there is none."""
        with self.lock:
            return self._db().meta_json(key)

    def keep(self, key: str, value: Any, what: str) -> None:
        """Keep ``value`` (JSON; None forgets it) as the setting ``key``, in one transaction
        (``what`` it is, for the message when that fails)."""
        self.write(what, lambda db: db.set_meta({key: value}))

    def size(self) -> int:
        """Bytes the state database takes on disk."""
        with self.lock:
            return self._db().size() if self.db is not None else 0

    def save(self, model: LoadableModel) -> int:
        """Write the head (parameters, optimizer state, counters) in one transaction; returns
        the database's size in bytes."""
        with self.lock:
            try:
                self._db().head.save(model.head())
            except StateWriteError as exc:
                # Nothing of this save reached the file (one transaction); try again later.
                self.error = (
                    f"saving the state to {self.path} failed ({exc}); the previous state is kept "
                    "and the save is retried; check the free space and permissions of state.dir"
                )
                self.last_failure = time.monotonic()
                raise
            if self.error is not None:
                log.info("state saved to %s again after a failed save", self.path)
            self.error = None
            self.last_save = time.monotonic()
            return self._db().size()

    def changed_elsewhere(self) -> bool:
        """True when another process (`personalizer import`) committed a change since the
        last load (this store's own writes never count: SQLite's data version ignores them)."""
        with self.lock:
            if self.db is None:
                return False
            return self.db.data_version != self._data_version

    def reload(self, model: LoadableModel, progress: Progress | None = None) -> LoadOutcome:
        """Load what another process wrote (classes, samples, head) into ``model``."""
        with self.lock:
            outcome = self._load(model, progress or (lambda text: None))
            merged = self._db().meta("merged") is not None
            if merged:
                self._db().delete_meta("merged")
            return LoadOutcome(outcome.loaded, outcome.warnings, outcome.set_aside, merged)

    def _close_db(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self.db is not None:
            self.db.close()
            self.db = None

    def close(self) -> None:
        """Close the database (its WAL is folded into the main file)."""
        with self.lock:
            self._close_db()
