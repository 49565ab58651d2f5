"""The state folder (systemd's StateDirectory): the daemon's samples, classes and head on disk.

One SQLite database, ``state.db`` (:mod:`.database`). At start, :meth:`StateStore.open` brings
it and the runtime model together:

- no database yet, but a ``state.npz`` of an older version: it is imported (and kept, renamed, as
  a backup);
- a database that SQLite cannot read or that fails its check: it is moved aside with the reason
  and the time in its name, reported, and the daemon starts fresh;
- the classes of the database win over the config's (they may have been added, renamed or
  removed on the board); config classes that are missing are added;
- samples embedded with another bundle are embedded again from their stored images (the log and
  the status show the progress); without images that is impossible, so they are set aside.

While running, a sample is one durable INSERT before it is acknowledged
(:meth:`add_sample`); the head is written in one transaction (:meth:`save`: autosave, training
stop, shutdown). A change made by another process (`personalizer import`) is noticed by
:meth:`changed_elsewhere` and loaded by :meth:`reload`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import PersonalizerError, StateFileError, StateWriteError
from ..images import ImageDecodeError, decode_image
from .database import Parameters, SampleReader, StateDatabase

log = logging.getLogger(__name__)

STATE_DB = "state.db"
LEGACY_STATE = "state.npz"
REEMBED_BATCH = 32
MAX_CROP_PIXELS = 4096 * 4096

Progress = Callable[[str | None], None]


class StateDirError(PersonalizerError):
    """The state folder cannot be created or written; the message names it and the fix."""


class StoreModel(Protocol):
    """What the store needs of the runtime model (TransferLearningModel)."""

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

    def head(self) -> Parameters:
        """The head as it is now (parameters, optimizer state, counters)."""
        ...

    def restore_head(self, saved: Parameters) -> bool:
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


class StateStore:
    """The state folder of one daemon."""

    def __init__(self, directory: Path, store_images: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_DB
        self.store_images = store_images
        self.db: StateDatabase | None = None
        self._lock = threading.Lock()  # one writer of the head at a time
        self.last_save: float | None = None
        # Set while the newest head is not on disk (the last save failed): the status reports
        # it and the service retries; cleared by the next save that works.
        self.error: str | None = None
        self.last_failure: float | None = None
        # The last other write (a sample, a class change) that failed, until one works again.
        self.write_error: str | None = None
        self._data_version = 0
        self._reader: SampleReader | None = None

    # --- the folder -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folder (0700) if needed and check it is writable."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.directory.stat().st_uid == os.geteuid():
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise StateDirError(
                f"state.dir {self.directory} cannot be created ({exc.strerror or exc}); create it "
                "and give it to the daemon's user, or choose another state.dir"
            ) from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise StateDirError(
                f"state.dir {self.directory} is not writable by this user; fix its owner "
                "(systemd's StateDirectory= does this) or choose another state.dir"
            )

    def _set_aside(self, reason: str) -> Path:
        """Move the database (and its WAL) aside as ``state.db.<reason>-<time>``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.directory / f"{STATE_DB}.{reason}-{stamp}"
        counter = 1
        while target.exists():
            target = self.directory / f"{STATE_DB}.{reason}-{stamp}-{counter}"
            counter += 1
        self.close()
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(STATE_DB + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        return target

    def _corrupt(self, exc: Exception) -> tuple[str, Path]:
        """Set an unusable database aside; the warning that says so, and where it went."""
        target = self._set_aside("corrupt")
        warning = (
            f"state database {self.path} is corrupt or not a state file ({exc}); moved it "
            f"to {target.name} and started fresh (delete it once you no longer need it)"
        )
        log.warning("%s", warning)
        return warning, target

    def _open_database(self) -> tuple[StateDatabase, list[str], Path | None]:
        warnings: list[str] = []
        try:
            db = StateDatabase(self.path)
        except StateFileError as exc:
            warning, target = self._corrupt(exc)
            return StateDatabase(self.path), [warning], target
        os.chmod(self.path, 0o600)
        return db, warnings, None

    # --- start ----------------------------------------------------------------------------------

    def open(self, model: StoreModel, progress: Progress | None = None) -> LoadOutcome:
        """Open the database and bring it and ``model`` together (see the module doc)."""
        fresh = not self.path.exists()
        db, warnings, set_aside = self._open_database()
        self.db = db
        legacy = self.directory / LEGACY_STATE
        if fresh and legacy.exists():
            warnings += self._migrate(db, model, legacy)
        try:
            outcome = self._load(model, progress or (lambda text: None))
        except StateFileError as exc:
            warning, target = self._corrupt(exc)
            self.db = StateDatabase(self.path)
            model.restore_samples([], [], [], 1)
            model.reset_parameters()
            outcome = self._load(model, progress or (lambda text: None))
            warnings.append(warning)
            set_aside = target
        self._data_version = self._db().data_version
        return LoadOutcome(
            outcome.loaded, tuple(warnings) + outcome.warnings, set_aside or outcome.set_aside
        )

    def _migrate(self, db: StateDatabase, model: StoreModel, legacy: Path) -> list[str]:
        from .legacy import import_npz

        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = legacy.with_name(f"{LEGACY_STATE}.imported-{stamp}")
        try:
            imported = import_npz(legacy, db, model)
        except StateFileError as exc:
            os.replace(legacy, legacy.with_name(f"{LEGACY_STATE}.unusable-{stamp}"))
            warning = (
                f"{legacy} (from an older version) could not be imported ({exc}); it was "
                f"renamed to {LEGACY_STATE}.unusable-{stamp} and the daemon started fresh"
            )
            log.warning("%s", warning)
            return [warning]
        os.replace(legacy, backup)
        message = (
            f"imported {imported} sample(s) and the trained head from {legacy.name} (an older "
            f"version's state) into {STATE_DB}; the old file is kept as {backup.name}"
        )
        log.warning("%s", message)
        return [message]

    def _load(self, model: StoreModel, progress: Progress) -> LoadOutcome:
        db = self._db()
        warnings: list[str] = []
        stored = db.classes()
        if stored:
            slots = self._fit_classes(stored, model, warnings)
        else:
            slots = model.class_slots()
        if slots != stored:
            db.set_classes(slots)
        model.set_classes(slots)
        samples_bundle = db.meta("samples_bundle")
        shape = tuple(db.meta_json("bottleneck_shape", []))
        counts = db.counts()
        total = sum(counts.values())
        if total and samples_bundle != model.bundle_id:
            set_aside = self._reembed(model, progress, warnings)
            if set_aside is not None:
                return LoadOutcome(False, tuple(warnings), set_aside)
        elif total and shape != tuple(model.bottleneck_shape):
            raise StateFileError(
                f"{self.path}: bottlenecks of shape {list(shape)} for bundle {samples_bundle}, "
                f"which now gives {list(model.bottleneck_shape)}"
            )
        self._mark_embedded(model)
        self._restore_samples(model)
        saved = db.load_parameters()
        head_loaded = False
        if saved is not None and saved.bundle_id == model.bundle_id:
            head_loaded = model.restore_head(saved)
            if not head_loaded:
                warnings.append(
                    f"the saved head in {self.path} does not fit bundle {model.bundle_id}; the "
                    "head starts from the samples again"
                )
        loaded = bool(total) or head_loaded
        if loaded:
            log.info(
                "loaded %d sample(s)%s from %s",
                sum(db.counts().values()),
                " and the trained head" if head_loaded else "",
                self.path,
            )
        else:
            log.info("no saved state in %s: starting fresh", self.directory)
        return LoadOutcome(loaded, tuple(warnings))

    def _fit_classes(
        self, stored: dict[int, str], model: StoreModel, warnings: list[str]
    ) -> dict[int, str]:
        """The stored classes within the bundle's capacity, plus config classes not there."""
        slots = dict(stored)
        over = {slot: name for slot, name in slots.items() if slot >= model.capacity}
        for slot, name in sorted(over.items()):
            free = [s for s in range(model.capacity) if s not in slots]
            del slots[slot]
            if free:
                slots[free[0]] = name
                self._db().relabel_slot(slot, free[0])
            else:
                removed = self._db().remove_class(slot)
                warnings.append(
                    f"class {name!r} no longer fits the bundle's {model.capacity} class slots: "
                    f"it and its {removed} sample(s) were removed"
                )
        for name in model.class_slots().values():
            if name in slots.values():
                continue
            free = [s for s in range(model.capacity) if s not in slots]
            if not free:
                warnings.append(
                    f"[model] classes lists {name!r}, but all {model.capacity} class slots are "
                    "used by classes kept on the board; remove one with cmd/class"
                )
                continue
            slots[free[0]] = name
            log.info("class %s (from the config) added in slot %d", name, free[0])
        return dict(sorted(slots.items()))

    def _reembed(self, model: StoreModel, progress: Progress, warnings: list[str]) -> Path | None:
        """Embed every stored sample again with the model's bundle; when that is impossible,
        set the state aside, start fresh and return where it went."""
        db = self._db()
        total = sum(db.counts().values())
        missing = sum(1 for _, image in db.image_rows() if image is None)
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
            self._db().set_classes(model.class_slots())
            self._db().set_meta(
                {
                    "samples_bundle": model.bundle_id,
                    "bottleneck_shape": list(model.bottleneck_shape),
                }
            )
            model.restore_samples([], [], [], 1)
            return target
        log.info(
            "the bundle changed (%s -> %s): embedding %d sample(s) again",
            old,
            model.bundle_id,
            total,
        )
        done = 0
        batch: dict[int, np.ndarray] = {}
        started = time.monotonic()
        for sample_id, image in db.image_rows():
            assert image is not None
            try:
                pixels = decode_image(image, MAX_CROP_PIXELS)
            except ImageDecodeError as exc:
                raise StateFileError(
                    f"{self.path}: the image of sample {sample_id} is damaged ({exc})"
                ) from exc
            batch[sample_id] = model.bottleneck(pixels)
            done += 1
            if len(batch) >= REEMBED_BATCH:
                db.replace_bottlenecks(batch)
                batch = {}
                text = f"embedding the samples again for the new bundle: {done}/{total}"
                log.info("%s", text)
                progress(text)
        if batch:
            db.replace_bottlenecks(batch)
        db.clear_parameters()  # the head belonged to the other base's features
        message = (
            f"the bundle changed ({old} -> {model.bundle_id}): embedded {total} sample(s) again "
            f"from their stored images in {time.monotonic() - started:.1f} s; the head starts "
            "from them"
        )
        log.warning("%s", message)
        warnings.append(message)
        progress(None)
        return None

    def _mark_embedded(self, model: StoreModel) -> None:
        """Record that the stored bottlenecks are those of ``model``'s bundle."""
        self._db().set_meta(
            {"samples_bundle": model.bundle_id, "bottleneck_shape": list(model.bottleneck_shape)}
        )

    def _restore_samples(self, model: StoreModel) -> None:
        """Give ``model`` the samples as rows it reads from the database when it uses them
        (its memory then does not grow with the samples)."""
        db = self._db()
        ids, slots = db.sample_index()
        reader = db.reader(model.bottleneck_shape)
        try:
            model.attach_samples(reader, ids, slots, db.next_sample_id())
        except BaseException:
            reader.close()
            raise
        if self._reader is not None:
            self._reader.close()  # snapshots still reading it start again on the new one
        self._reader = reader

    # --- while running --------------------------------------------------------------------------

    def _db(self) -> StateDatabase:
        if self.db is None:
            raise StateFileError("the state database is not open")
        return self.db

    def add_sample(
        self, slot: int, bottleneck: np.ndarray, source: str, created: float, jpeg: bytes | None
    ) -> int:
        """Store one sample durably; returns its id. StateWriteError (an OSError) on failure."""
        image = jpeg if self.store_images else None
        return int(
            self._write(
                "storing the sample",
                lambda db: db.add_sample(slot, bottleneck, source, created, image),
            )
        )

    def _write(self, what: str, action: Callable[[StateDatabase], Any]) -> Any:
        """Run one change of the database; a failure is remembered for the status."""
        try:
            result = action(self._db())
        except StateWriteError as exc:
            self.write_error = (
                f"{what} failed ({exc}); nothing was changed; check the free space and "
                f"permissions of state.dir ({self.directory})"
            )
            raise
        self.write_error = None
        self._data_version = self._db().data_version
        return result

    def delete_sample(self, sample_id: int) -> bool:
        """Delete one sample (one transaction); False when there was none."""
        return bool(self._write("deleting a sample", lambda db: db.delete_sample(sample_id)))

    def relabel(self, sample_id: int, slot: int) -> bool:
        """Move one sample to class slot ``slot`` (one transaction)."""
        return bool(self._write("relabelling a sample", lambda db: db.relabel(sample_id, slot)))

    def delete_samples(self, slot: int | None) -> int:
        """Delete one class slot's samples, or all (``None``), in one transaction."""
        return int(self._write("deleting samples", lambda db: db.delete_samples(slot)))

    def set_classes(self, slots: Mapping[int, str]) -> None:
        """Store the classes (slot -> name) in one transaction."""
        self._write("storing the classes", lambda db: db.set_classes(slots))

    def remove_class(self, slot: int) -> int:
        """Remove a class and its samples in one transaction; returns the samples removed."""
        return int(self._write("removing a class", lambda db: db.remove_class(slot)))

    def clear_head(self) -> None:
        """Forget the saved head (after a reset of everything)."""
        self._write("clearing the head", lambda db: db.clear_parameters())

    def list_samples(self, slot: int | None, offset: int, limit: int) -> tuple[list, int]:
        """A page of samples and the total (see StateDatabase.list_samples)."""
        return self._db().list_samples(slot, offset, limit)

    def sample_info(self, sample_id: int) -> Any:
        """One sample's listing entry, or None."""
        return self._db().sample(sample_id)

    def image(self, sample_id: int) -> bytes | None:
        """The stored JPEG of one sample, or None."""
        return self._db().sample_image(sample_id)

    def size(self) -> int:
        """Bytes the state database takes on disk."""
        return self._db().size() if self.db is not None else 0

    def export_to(self, target: Path) -> None:
        """A consistent copy of the whole state (SQLite's backup API) at ``target``."""
        self._db().backup_to(target)

    def save(self, model: StoreModel) -> int:
        """Write the head (parameters, optimizer state, counters) in one transaction; returns
        the database's size in bytes."""
        with self._lock:
            try:
                self._db().save_parameters(model.head())
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
            self._data_version = self._db().data_version
            return self._db().size()

    def changed_elsewhere(self) -> bool:
        """True when another process (`personalizer import`) changed the database."""
        if self.db is None:
            return False
        return self.db.data_version != self._data_version

    def reload(self, model: StoreModel, progress: Progress | None = None) -> LoadOutcome:
        """Load what another process wrote (classes, samples, head) into ``model``."""
        outcome = self._load(model, progress or (lambda text: None))
        merged = self._db().meta("merged") is not None
        if merged:
            with self._db().transaction() as db:
                db.execute("DELETE FROM meta WHERE key = 'merged'")
        self._data_version = self._db().data_version
        return LoadOutcome(outcome.loaded, outcome.warnings, outcome.set_aside, merged)

    def close(self) -> None:
        """Close the database (its WAL is folded into the main file)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self.db is not None:
            self.db.close()
            self.db = None
