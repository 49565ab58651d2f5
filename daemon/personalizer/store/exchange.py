"""Teach one board, deploy to many: `personalizer export` and `personalizer import`.

Export copies the state database with SQLite's backup API: one portable file, consistent even
while the daemon runs and writes. Import takes such a file into a board's state database, running
daemon or not, in one transaction (all of it or nothing), and never merges silently:

- ``replace``: the board's classes, samples and head become the file's. A file made with
  another bundle is accepted when every sample has its image: the daemon embeds them again;
- ``merge``: the file's samples are added (classes matched by name, new classes into free
  slots); both must come from the same bundle. Samples of a fleet keep their id across boards
  and their origin, unless the board has that sample already. The head is kept and the
  status asks for training (or, while it was never trained, it is imprinted again).

A running daemon notices the change (SQLite's data version) and loads it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import PersonalizerError, StateFileError
from ..model.class_registry import first_free_slot
from .head_table import COUNTERS
from .sqlite_file import StateDatabase

Mode = Literal["replace", "merge"]
# What a replacing import takes from the file besides its tables: what the samples and the head
# were made with.
REPLACED_META = ("samples_bundle", "bottleneck_shape", *COUNTERS)


class ExchangeError(PersonalizerError):
    """An export or import that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    """What a state file holds."""

    bundle: str | None
    classes: dict[str, int]  # class -> samples
    images: int  # samples with a stored image
    trained_steps: int

    def describe(self) -> str:
        """One line for the terminal."""
        counts = ", ".join(f"{name} {n}" for name, n in self.classes.items()) or "no classes"
        total = sum(self.classes.values())
        head = f"trained {self.trained_steps} step(s)" if self.trained_steps else "untrained"
        return (
            f"{total} sample(s) ({counts}; {self.images} with images), bundle {self.bundle}, "
            f"head {head}"
        )


def summarize(db: StateDatabase) -> Summary:
    """What ``db`` holds."""
    classes = db.classes.all()
    counts = db.samples.counts()
    images = sum(1 for _, image, _ in db.samples.images() if image is not None)
    steps = int(db.meta("steps") or 0) if db.meta("parameters_bundle") else 0
    return Summary(
        db.meta("samples_bundle"),
        {name: counts.get(slot, 0) for slot, name in classes.items()},
        images,
        steps,
    )


def export_state(state_db: Path, target: Path) -> Summary:
    """Write a consistent copy of ``state_db`` to ``target`` (atomically)."""
    if not state_db.is_file():
        raise ExchangeError(f"there is no state at {state_db}: nothing to export yet")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExchangeError(f"{folder} is not a folder; choose where the file should go")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    partial = Path(name)
    try:
        source = sqlite3.connect(state_db, timeout=30.0)
        try:
            destination = sqlite3.connect(partial)
            try:
                source.backup(destination)
                destination.execute("PRAGMA journal_mode = DELETE")
            finally:
                destination.close()
        finally:
            source.close()
        copy = StateDatabase(partial, wal=False)  # checks what was written
        try:
            summary = summarize(copy)
        finally:
            copy.close()
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except sqlite3.Error as err:
        raise ExchangeError(f"exporting {state_db} failed: {err}") from err
    finally:
        partial.unlink(missing_ok=True)
    return summary


def import_state(
    source_file: Path, state_db: Path, mode: Mode, bundle_id: str, capacity: int
) -> tuple[Summary, Summary]:
    """Take ``source_file`` into ``state_db`` (see the module doc); returns (file, result).

    ``bundle_id``/``capacity`` are those of the board's bundle.
    """
    if not source_file.is_file():
        raise ExchangeError(f"{source_file}: no such file; give a file made by personalizer export")
    try:
        source = StateDatabase(source_file, wal=False)
    except StateFileError as exc:
        raise ExchangeError(f"{source_file} is not a state file ({exc})") from None
    try:
        incoming = summarize(source)
        counts = source.samples.counts()
        slots = (
            source.classes.all()
            if mode == "replace"
            else {slot: name for slot, name in source.classes.all().items() if counts.get(slot)}
        )
        shape = source.meta_json("bottleneck_shape", [])
    finally:
        source.close()
    target = StateDatabase(state_db)
    try:
        current = summarize(target)
        if mode == "replace":
            _check_replace(source_file, incoming, bundle_id, capacity, slots)
            _replace(target, source_file)
        else:
            _check_merge(source_file, incoming, current, target, bundle_id, shape)
            _merge(target, source_file, slots, capacity)
        return incoming, summarize(target)
    finally:
        target.close()


def _check_replace(
    path: Path, incoming: Summary, bundle_id: str, capacity: int, slots: dict[int, str]
) -> None:
    total = sum(incoming.classes.values())
    if any(slot >= capacity for slot in slots):
        raise ExchangeError(
            f"{path} has {len(slots)} classes in slots up to {max(slots)}, the board's bundle has "
            f"{capacity} class slots; convert a bundle with a larger --num_classes"
        )
    if incoming.bundle not in (None, bundle_id) and incoming.images < total:
        raise ExchangeError(
            f"{path} was made with bundle {incoming.bundle}, this board runs {bundle_id}, and "
            f"{total - incoming.images} of its {total} sample(s) have no stored image to embed "
            "them again; import it on a board with that bundle"
        )


def _check_merge(
    path: Path,
    incoming: Summary,
    current: Summary,
    target: StateDatabase,
    bundle_id: str,
    shape: list[int],
) -> None:
    ours = target.meta("samples_bundle") if sum(current.classes.values()) else bundle_id
    if incoming.bundle != bundle_id or ours != bundle_id:
        raise ExchangeError(
            f"{path} was made with bundle {incoming.bundle}, this board runs {bundle_id}: "
            "samples of two bundles cannot be merged; use --replace, or the same bundle"
        )
    mine = target.meta_json("bottleneck_shape", shape)
    if list(mine) != list(shape):
        raise ExchangeError(f"{path} has bottlenecks of shape {shape}, this board {mine}")


def _replace(target: StateDatabase, source_file: Path) -> None:
    with target.attached(source_file, "src"), target.transaction() as db:
        db.execute("DELETE FROM samples")
        db.execute("DELETE FROM classes")
        db.execute("DELETE FROM tensors")
        db.execute("INSERT INTO classes SELECT slot, name FROM src.classes")
        db.execute(
            "INSERT INTO samples (id, slot, source, created, bottleneck, image, crc, uid, origin) "
            "SELECT id, slot, source, created, bottleneck, image, crc, uid, origin "
            "FROM src.samples"
        )
        db.execute("INSERT INTO tensors SELECT * FROM src.tensors")
        marks = ",".join("?" * len(REPLACED_META))
        db.execute(f"DELETE FROM meta WHERE key IN ({marks})", REPLACED_META)
        db.execute(
            f"INSERT INTO meta SELECT key, value FROM src.meta WHERE key IN ({marks})",
            REPLACED_META,
        )
        db.execute("DELETE FROM sqlite_sequence WHERE name = 'samples'")
        db.execute("INSERT INTO sqlite_sequence SELECT name, seq FROM src.sqlite_sequence")


def _merge(
    target: StateDatabase, source_file: Path, incoming: dict[int, str], capacity: int
) -> None:
    ours = target.classes.all()
    by_name = {name: slot for slot, name in ours.items()}
    mapping: dict[int, int] = {}
    new: dict[int, str] = {}
    for slot, name in sorted(incoming.items()):
        if name in by_name:
            mapping[slot] = by_name[name]
            continue
        free = first_free_slot([*ours, *new], capacity)
        if free is None:
            raise ExchangeError(
                f"the board's bundle has {capacity} class slots and they cannot hold the "
                f"classes of both ({sorted(set(by_name) | set(incoming.values()))}); remove "
                "classes on the board first, or use --replace"
            )
        mapping[slot] = free
        new[free] = name
    with target.attached(source_file, "src"), target.transaction() as db:
        db.executemany("INSERT INTO classes (slot, name) VALUES (?, ?)", new.items())
        db.execute("CREATE TEMP TABLE slot_map (old INTEGER PRIMARY KEY, new INTEGER)")
        db.executemany("INSERT INTO slot_map VALUES (?, ?)", mapping.items())
        # A fleet sample keeps its id across boards and its origin, unless the board has it
        # already (then the copy is a sample of this board's own).
        db.execute(
            "INSERT INTO samples (slot, source, created, bottleneck, image, crc, uid, origin) "
            "SELECT slot_map.new, s.source, s.created, s.bottleneck, s.image, s.crc, "
            "CASE WHEN s.uid IN (SELECT uid FROM main.samples WHERE uid IS NOT NULL) "
            "THEN NULL ELSE s.uid END, "
            "CASE WHEN s.uid IN (SELECT uid FROM main.samples WHERE uid IS NOT NULL) "
            "THEN NULL ELSE s.origin END "
            "FROM src.samples AS s JOIN slot_map ON slot_map.old = s.slot ORDER BY s.id"
        )
        db.execute("DROP TABLE slot_map")
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('merged', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (json.dumps(str(source_file)),),
        )
