"""The ``samples`` table: one row per sample, and ``set_aside_samples`` for damaged ones.

A row holds the id (never reused), the class slot, the source, the time, the bottleneck (raw
little-endian float16 bytes of the bundle's bottleneck shape), a JPEG of the model-input crop
(NULL when images are not kept), a CRC-32 of bottleneck and image, and, for a sample known to
a fleet (fleet/), its id across boards (``uid``) and the name of the board that took it
(``origin``); both are NULL for a board in no fleet. Every read of a bottleneck or an image
checks the CRC: a damaged row is never used. It is moved, as it is, to ``set_aside_samples``
with the reason (:meth:`SampleTable.set_aside`), where it can be looked at
with ``sqlite3``; a sample is one INSERT whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DamagedSampleError
from .blobs import SAMPLE_DTYPE, checked_bottleneck, crc, to_blob

if TYPE_CHECKING:
    from .sqlite_file import StateDatabase

_COLUMNS = """
    slot INTEGER NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    bottleneck BLOB NOT NULL,
    image BLOB,
    crc INTEGER NOT NULL,
    uid TEXT,
    origin TEXT"""
SAMPLES_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS samples (id INTEGER PRIMARY KEY AUTOINCREMENT,{_COLUMNS})",
    f"""CREATE TABLE IF NOT EXISTS set_aside_samples (id INTEGER PRIMARY KEY,{_COLUMNS},
        reason TEXT NOT NULL, set_aside REAL NOT NULL)""",
)
SAMPLES_INDEXES = ("CREATE UNIQUE INDEX IF NOT EXISTS samples_uid ON samples (uid)",)
# Schema 1 -> 2: where a fleet sample came from (the rows of schema 1 have neither).
SAMPLES_MIGRATION_2 = tuple(
    f"ALTER TABLE {table} ADD COLUMN {column} TEXT"
    for table in ("samples", "set_aside_samples")
    for column in ("uid", "origin")
)
_ROW = "id, slot, source, created, bottleneck, image, crc"


@dataclass(frozen=True)
class SampleInfo:
    """One sample as a listing shows it."""

    id: int
    slot: int
    source: str
    created: float
    has_image: bool
    origin: str | None = None  # the board that took it (fleet/; None: no fleet knows it)


@dataclass(frozen=True)
class SampleRow:
    """One stored sample with its (checked) bottleneck."""

    id: int
    slot: int
    source: str
    created: float
    bottleneck: np.ndarray  # read-only, float16
    image: bytes | None


class SampleTable:
    """The samples of one state database."""

    def __init__(self, db: StateDatabase) -> None:
        """The table of ``db``."""
        self._db = db

    # --- writes ---------------------------------------------------------------------------------

    def add(
        self,
        slot: int,
        bottleneck: np.ndarray,
        source: str,
        created: float,
        image: bytes | None,
        uid: str | None = None,
        origin: str | None = None,
    ) -> int:
        """Insert one sample (durable when this returns); returns its id. ``uid`` and
        ``origin``: a sample from a fleet (its id across boards and the board that took it).
        Inside an open transaction, it joins it."""
        blob = to_blob(bottleneck, SAMPLE_DTYPE)
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO samples (slot, source, created, bottleneck, image, crc, uid, origin) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (slot, source, created, blob, image, crc(blob, image), uid, origin),
            )
        return int(cursor.lastrowid)

    def add_many(
        self, rows: Iterable[tuple[int | None, int, np.ndarray, str, float, bytes | None]]
    ) -> None:
        """Insert many samples ``(id or None, slot, bottleneck, source, time, image)`` in one
        transaction (saves and imports). The rows are encoded one at a time as SQLite takes
        them, so a save of 1000 samples never holds a second copy of all of them."""

        def encoded() -> Iterator[tuple[Any, ...]]:
            for sample_id, slot, bottleneck, source, created, image in rows:
                blob = to_blob(bottleneck, SAMPLE_DTYPE)
                yield sample_id, slot, source, created, blob, image, crc(blob, image)

        with self._db.transaction() as db:
            db.executemany(f"INSERT INTO samples ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?)", encoded())

    def set_next_id(self, next_id: int) -> None:
        """Make ``next_id`` the id of the next sample (ids are never reused)."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'samples'")
            db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('samples', ?)", (next_id - 1,)
            )

    def delete(self, sample_id: int) -> bool:
        """Delete one sample; False when there was none with that id."""
        with self._db.transaction() as db:
            return db.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount > 0

    def delete_class(self, slot: int | None = None) -> int:
        """Delete the samples of one class slot, or every sample; returns how many."""
        with self._db.transaction() as db:
            if slot is None:
                return int(db.execute("DELETE FROM samples").rowcount)
            return int(db.execute("DELETE FROM samples WHERE slot = ?", (slot,)).rowcount)

    def relabel(self, sample_id: int, slot: int) -> bool:
        """Move one sample to another class slot; False when there was no such sample."""
        with self._db.transaction() as db:
            cursor = db.execute("UPDATE samples SET slot = ? WHERE id = ?", (slot, sample_id))
            return cursor.rowcount > 0

    def replace_bottlenecks(self, bottlenecks: Mapping[int, np.ndarray]) -> None:
        """Store new bottlenecks for some samples (re-embedding), in one transaction."""
        with self._db.transaction() as db:
            for sample_id, bottleneck in bottlenecks.items():
                blob = to_blob(bottleneck, SAMPLE_DTYPE)
                row = db.execute("SELECT image FROM samples WHERE id = ?", (sample_id,)).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE samples SET bottleneck = ?, crc = ? WHERE id = ?",
                        (blob, crc(blob, row[0]), sample_id),
                    )

    def set_aside(self, damaged: Mapping[int, str], when: float) -> list[SampleInfo]:
        """Move the samples ``damaged`` (id -> why) to ``set_aside_samples``, as they are, in
        one transaction; returns those that were still there."""
        moved = []
        with self._db.transaction() as db:
            for sample_id, why in sorted(damaged.items()):
                info = self.info(sample_id)
                if info is None:
                    continue
                db.execute(
                    f"INSERT OR REPLACE INTO set_aside_samples ({_ROW}, uid, origin, reason, "
                    f"set_aside) SELECT {_ROW}, uid, origin, ?, ? FROM samples WHERE id = ?",
                    (why, when, sample_id),
                )
                db.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
                moved.append(info)
        return moved

    # --- reads ----------------------------------------------------------------------------------

    def info(self, sample_id: int) -> SampleInfo | None:
        """One sample's listing entry, or None."""
        rows = self._db.query(
            "SELECT id, slot, source, created, image IS NOT NULL, origin FROM samples WHERE id = ?",
            (sample_id,),
        )
        return _info(rows[0]) if rows else None

    def image(self, sample_id: int) -> bytes | None:
        """The stored JPEG of one sample (None: no such sample, or no image kept);
        DamagedSampleError when the row's checksum fails."""
        rows = self._db.query(f"SELECT {_ROW} FROM samples WHERE id = ?", (sample_id,))
        if not rows:
            return None
        sample_id, _, _, _, blob, image, stored = rows[0]
        image = None if image is None else bytes(image)
        if crc(blob, image) != stored:
            raise DamagedSampleError(self._db.path, sample_id, "its checksum does not match")
        return image

    def page(
        self, slot: int | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[SampleInfo], int]:
        """A page of samples (by id), and the total that matched."""
        where, args = ("WHERE slot = ?", (slot,)) if slot is not None else ("", ())
        with self._db.lock:
            total = int(self._db.query(f"SELECT COUNT(*) FROM samples {where}", args)[0][0])
            rows = self._db.query(
                f"SELECT id, slot, source, created, image IS NOT NULL, origin FROM samples {where} "
                "ORDER BY id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
        return [_info(row) for row in rows], total

    def counts(self) -> dict[int, int]:
        """slot -> number of samples."""
        rows = self._db.query("SELECT slot, COUNT(*) FROM samples GROUP BY slot")
        return {int(slot): int(n) for slot, n in rows}

    def index(self) -> tuple[list[int], list[int]]:
        """Every sample's id and class slot, by id (no bottleneck is read)."""
        rows = self._db.query("SELECT id, slot FROM samples ORDER BY id")
        return [int(row[0]) for row in rows], [int(row[1]) for row in rows]

    def next_id(self) -> int:
        """The id the next sample will get (ids are never reused, also after deletes)."""
        rows = self._db.query("SELECT seq FROM sqlite_sequence WHERE name = 'samples'")
        return (int(rows[0][0]) if rows else 0) + 1

    def rows(self, shape: Sequence[int], batch: int = 256) -> Iterator[SampleRow]:
        """Every sample with its checked bottleneck, by id, read in batches (memory stays
        flat). DamagedSampleError at the first damaged row."""
        for row in self._raw_rows(batch):
            sample_id, slot, source, created, blob, image, stored = row
            image = None if image is None else bytes(image)
            array = checked_bottleneck(self._db.path, sample_id, blob, image, stored, shape)
            yield SampleRow(int(sample_id), int(slot), source, float(created), array, image)

    def arrays(self, shape: Sequence[int]) -> tuple[list[int], list[int], list[np.ndarray]]:
        """Every sample's id, slot and checked bottleneck, by id."""
        ids, slots, arrays = [], [], []
        for row in self.rows(shape):
            ids.append(row.id)
            slots.append(row.slot)
            arrays.append(row.bottleneck)
        return ids, slots, arrays

    def images(self, batch: int = 32) -> Iterator[tuple[int, bytes | None, str | None]]:
        """``(id, JPEG or None, why it is damaged or None)`` of every sample, by id."""
        for sample_id, _, _, _, blob, image, stored in self._raw_rows(batch):
            image = None if image is None else bytes(image)
            damaged = None if crc(blob, image) == stored else "its checksum does not match"
            yield int(sample_id), image, damaged

    def _raw_rows(self, batch: int) -> Iterator[tuple[Any, ...]]:
        last = -1
        while True:
            rows = self._db.query(
                f"SELECT {_ROW} FROM samples WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            )
            if not rows:
                return
            yield from rows
            last = int(rows[-1][0])


def _info(row: Sequence[Any]) -> SampleInfo:
    return SampleInfo(int(row[0]), int(row[1]), row[2], float(row[3]), bool(row[4]), row[5])
