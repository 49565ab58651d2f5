"""The state database: one SQLite file (WAL) with every sample, the classes and the parameters.

Tables:

- ``meta``: key -> value (format, schema version, the bundle the samples were embedded with,
  the bottleneck shape and dtype, training counters, ...);
- ``classes``: slot -> name, the active classes and the output slot each one uses;
- ``samples``: one row per sample: id (never reused), class slot, source, time, the bottleneck
  (raw little-endian bytes of ``meta.sample_dtype`` and ``meta.bottleneck_shape``) and a JPEG of
  the model-input crop (NULL when images are not kept);
- ``tensors``: the head's parameters and the optimizer state, one row per array.

Every change is one transaction, committed durably (``synchronous = FULL``: the WAL is synced at
each commit) before the caller goes on: a sample is one INSERT whatever the number of samples,
and the parameters are written all together or not at all. Nothing is pickled. A file that is
not such a database, or fails SQLite's own check, raises :class:`StateFileError`.

One connection, used from several threads (commands, trainer, shutdown), serialised by a lock.
A :class:`SampleReader` reads bottlenecks on a connection of its own (the daemon's sample store
reads its rows through one, so training never waits for a write nor a write for training).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SamplesChanged, StateFileError, StateWriteError

FORMAT = "personalizer-state"
SCHEMA_VERSION = 1
SAMPLE_DTYPE = "float16"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (slot INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slot INTEGER NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    bottleneck BLOB NOT NULL,
    image BLOB,
    crc INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tensors (
    kind TEXT NOT NULL,
    idx INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (kind, idx)
);
"""
PARAMETERS, OPTIMIZER_STATE = "parameter", "optimizer_state"


@dataclass(frozen=True)
class SampleRow:
    """One stored sample (its bottleneck as raw bytes; see :meth:`StateDatabase.array`)."""

    id: int
    slot: int
    source: str
    created: float
    bottleneck: bytes
    has_image: bool


@dataclass(frozen=True)
class SampleInfo:
    """One sample as a listing shows it."""

    id: int
    slot: int
    source: str
    created: float
    has_image: bool


@dataclass(frozen=True)
class Parameters:
    """The saved head: parameters, optimizer state and counters, for one bundle."""

    bundle_id: str
    parameters: tuple[np.ndarray, ...]
    optimizer_state: tuple[np.ndarray, ...]
    steps: int
    epochs: int


def _to_blob(array: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def _crc(*parts: bytes | None) -> int:
    value = 0
    for part in parts:
        value = zlib.crc32(part or b"", value)
    return value


def _check_length(path: Path) -> None:
    """Refuse a file shorter than its own header says (cut off by a full disk or a copy)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
            size = handle.seek(0, 2)
    except FileNotFoundError:
        return
    except OSError as err:
        raise StateFileError(f"{path} cannot be read ({err})") from err
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        if size:
            raise StateFileError(f"{path} is not a state database (no SQLite header)")
        return
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    changes, pages, valid_for = (struct.unpack(">I", header[i : i + 4])[0] for i in (24, 28, 92))
    wal = path.with_name(path.name + "-wal")
    if changes == valid_for and pages and not wal.exists() and size < pages * page_size:
        raise StateFileError(
            f"{path} is truncated: {size} bytes, its header says {pages * page_size}"
        )


class StateDatabase:
    """The SQLite state file at ``path`` (created when missing)."""

    def __init__(self, path: str | Path, *, check: bool = True, wal: bool = True) -> None:
        """Open (or create) the database; ``check`` runs SQLite's quick integrity check (and a
        length check); ``wal=False`` keeps it one self-contained file (saved models).

        Raises:
            StateFileError: the file is not a personalizer state database, or is damaged.
        """
        self.path = Path(path)
        self._wal = wal
        self._lock = threading.RLock()
        if check:
            _check_length(self.path)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as err:
            raise StateFileError(f"{self.path} cannot be opened as a database ({err})") from err
        try:
            self._setup(check)
        except BaseException:
            self._db.close()
            raise

    def _setup(self, check: bool) -> None:
        try:
            if check:
                result = self._db.execute("PRAGMA quick_check").fetchone()
                verdict = result[0] if result else "no answer"
                if verdict != "ok":
                    raise StateFileError(f"{self.path} is damaged (SQLite's check: {verdict})")
            self._db.execute(f"PRAGMA journal_mode = {'WAL' if self._wal else 'DELETE'}")
            self._db.execute("PRAGMA synchronous = FULL")
            with self.transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                fmt = self._get("format")
                if fmt is None:
                    self._set("format", FORMAT)
                    self._set("schema_version", str(SCHEMA_VERSION))
                    self._set("created", str(time.time()))
                elif fmt != FORMAT:
                    raise StateFileError(f"{self.path} is not a personalizer state database")
            version = int(self.meta("schema_version") or 0)
            if version != SCHEMA_VERSION:
                raise StateFileError(
                    f"{self.path} has state schema {version}; this personalizer reads "
                    f"{SCHEMA_VERSION}. Upgrade the personalizer package or start fresh"
                )
        except sqlite3.DatabaseError as err:
            raise StateFileError(
                f"{self.path} is not a usable state database ({err}); it is corrupt or not a "
                "personalizer state file"
            ) from err

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    # --- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction; a write error becomes :class:`StateWriteError` (OSError).

        Nested uses join the outer transaction.
        """
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as err:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(err, sqlite3.OperationalError | sqlite3.DatabaseError) and not (
                    isinstance(err, sqlite3.IntegrityError)
                ):
                    raise StateWriteError(_write_error(self.path, err)) from err
                raise

    @contextmanager
    def attached(self, other: str | Path, alias: str) -> Iterator[None]:
        """Another database file attached as ``alias`` (for copying between files)."""
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS " + alias, (str(other),))
            try:
                yield
            finally:
                self._db.execute("DETACH DATABASE " + alias)

    # --- meta -----------------------------------------------------------------------------------

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        """A meta value, or None."""
        with self._lock:
            return self._get(key)

    def meta_json(self, key: str, default: Any = None) -> Any:
        """A meta value stored as JSON."""
        text = self.meta(key)
        return default if text is None else json.loads(text)

    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Set meta values (JSON-encoded unless strings) in one transaction."""
        with self.transaction():
            for key, value in values.items():
                self._set(key, value if isinstance(value, str) else json.dumps(value))

    @property
    def data_version(self) -> int:
        """Changes when another connection (``personalizer import``) committed a change."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # --- classes --------------------------------------------------------------------------------

    def classes(self) -> dict[int, str]:
        """slot -> class name, by slot."""
        with self._lock:
            rows = self._db.execute("SELECT slot, name FROM classes ORDER BY slot").fetchall()
        return {int(slot): str(name) for slot, name in rows}

    def set_classes(self, classes: Mapping[int, str]) -> None:
        """Replace the class table (slot -> name) in one transaction."""
        with self.transaction() as db:
            db.execute("DELETE FROM classes")
            db.executemany("INSERT INTO classes (slot, name) VALUES (?, ?)", classes.items())

    def rename_class(self, slot: int, name: str) -> None:
        """Give slot ``slot`` a new name."""
        with self.transaction() as db:
            db.execute("UPDATE classes SET name = ? WHERE slot = ?", (name, slot))

    def relabel_slot(self, old: int, new: int) -> None:
        """Move a class (its name and samples) from slot ``old`` to the free slot ``new``."""
        with self.transaction() as db:
            db.execute("UPDATE classes SET slot = ? WHERE slot = ?", (new, old))
            db.execute("UPDATE samples SET slot = ? WHERE slot = ?", (new, old))

    def remove_class(self, slot: int) -> int:
        """Remove a class and all its samples; returns how many samples went."""
        with self.transaction() as db:
            removed = db.execute("DELETE FROM samples WHERE slot = ?", (slot,)).rowcount
            db.execute("DELETE FROM classes WHERE slot = ?", (slot,))
        return int(removed)

    # --- samples --------------------------------------------------------------------------------

    def add_sample(
        self,
        slot: int,
        bottleneck: np.ndarray,
        source: str,
        created: float,
        image: bytes | None,
    ) -> int:
        """Insert one sample (durable when this returns); returns its id."""
        blob = _to_blob(bottleneck, SAMPLE_DTYPE)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO samples (slot, source, created, bottleneck, image, crc) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (slot, source, created, blob, image, _crc(blob, image)),
            )
        return int(cursor.lastrowid)

    def add_samples(
        self, rows: Iterable[tuple[int | None, int, np.ndarray, str, float, bytes | None]]
    ) -> None:
        """Insert many samples ``(id or None, slot, bottleneck, source, time, image)`` in one
        transaction (saves and imports). The rows are encoded one at a time as SQLite takes
        them, so a save of 1000 samples never holds a second copy of all of them."""

        def encoded() -> Iterator[tuple[Any, ...]]:
            for sample_id, slot, bottleneck, source, created, image in rows:
                blob = _to_blob(bottleneck, SAMPLE_DTYPE)
                yield sample_id, slot, source, created, blob, image, _crc(blob, image)

        with self.transaction() as db:
            db.executemany(
                "INSERT INTO samples (id, slot, source, created, bottleneck, image, crc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                encoded(),
            )

    def set_next_sample_id(self, next_id: int) -> None:
        """Make ``next_id`` the id of the next sample (ids are never reused)."""
        with self.transaction() as db:
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'samples'")
            db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('samples', ?)", (next_id - 1,)
            )

    def delete_sample(self, sample_id: int) -> bool:
        """Delete one sample; False when there was none with that id."""
        with self.transaction() as db:
            return db.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount > 0

    def delete_samples(self, slot: int | None = None) -> int:
        """Delete the samples of one class slot, or every sample; returns how many."""
        with self.transaction() as db:
            if slot is None:
                return int(db.execute("DELETE FROM samples").rowcount)
            return int(db.execute("DELETE FROM samples WHERE slot = ?", (slot,)).rowcount)

    def relabel(self, sample_id: int, slot: int) -> bool:
        """Move one sample to another class slot; False when there was no such sample."""
        with self.transaction() as db:
            cursor = db.execute("UPDATE samples SET slot = ? WHERE id = ?", (slot, sample_id))
            return cursor.rowcount > 0

    def sample(self, sample_id: int) -> SampleInfo | None:
        """One sample's listing entry, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, slot, source, created, image IS NOT NULL FROM samples WHERE id = ?",
                (sample_id,),
            ).fetchone()
        return None if row is None else SampleInfo(*row[:4], bool(row[4]))

    def sample_image(self, sample_id: int) -> bytes | None:
        """The stored JPEG of one sample (None: no such sample, or no image kept)."""
        with self._lock:
            row = self._db.execute(
                "SELECT image FROM samples WHERE id = ?", (sample_id,)
            ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def list_samples(
        self, slot: int | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[SampleInfo], int]:
        """A page of samples (by id), and the total that matched."""
        where, args = ("WHERE slot = ?", (slot,)) if slot is not None else ("", ())
        with self._lock:
            total = int(
                self._db.execute(f"SELECT COUNT(*) FROM samples {where}", args).fetchone()[0]
            )
            rows = self._db.execute(
                f"SELECT id, slot, source, created, image IS NOT NULL FROM samples {where} "
                "ORDER BY id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [SampleInfo(*row[:4], bool(row[4])) for row in rows], total

    def counts(self) -> dict[int, int]:
        """slot -> number of samples."""
        with self._lock:
            rows = self._db.execute("SELECT slot, COUNT(*) FROM samples GROUP BY slot").fetchall()
        return {int(slot): int(n) for slot, n in rows}

    def sample_rows(self, batch: int = 256) -> Iterator[SampleRow]:
        """Every sample with its bottleneck, by id, read in batches (memory stays flat)."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, slot, source, created, bottleneck, image IS NOT NULL, crc, image "
                    "FROM samples WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield SampleRow(
                    int(row[0]), int(row[1]), row[2], float(row[3]), row[4], bool(row[5])
                )
            last = int(rows[-1][0])

    def sample_arrays(self, shape: Sequence[int]) -> tuple[list[int], list[int], list[np.ndarray]]:
        """Every sample's id, slot and bottleneck (read-only views of the blobs), by id.

        Raises:
            StateFileError: a bottleneck is not of ``shape`` (or a row is damaged).
        """
        ids, slots, arrays = [], [], []
        for row in self.sample_rows():
            ids.append(row.id)
            slots.append(row.slot)
            arrays.append(_checked_array(self.path, row.id, row.bottleneck, shape))
        return ids, slots, arrays

    def image_rows(self, batch: int = 32) -> Iterator[tuple[int, bytes | None]]:
        """``(id, JPEG or None)`` of every sample, by id, in batches."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, image FROM samples WHERE id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for sample_id, image in rows:
                yield int(sample_id), None if image is None else bytes(image)
            last = int(rows[-1][0])

    def replace_bottlenecks(self, bottlenecks: Mapping[int, np.ndarray]) -> None:
        """Store new bottlenecks for some samples (re-embedding), in one transaction."""
        with self.transaction() as db:
            for sample_id, bottleneck in bottlenecks.items():
                blob = _to_blob(bottleneck, SAMPLE_DTYPE)
                row = db.execute("SELECT image FROM samples WHERE id = ?", (sample_id,)).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE samples SET bottleneck = ?, crc = ? WHERE id = ?",
                        (blob, _crc(blob, row[0]), sample_id),
                    )

    def next_sample_id(self) -> int:
        """The id the next sample will get (ids are never reused, also after deletes)."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'samples'"
            ).fetchone()
        return (int(row[0]) if row else 0) + 1

    @staticmethod
    def array(blob: bytes, shape: Sequence[int]) -> np.ndarray:
        """A stored bottleneck as a read-only array (no copy)."""
        array = np.frombuffer(blob, dtype=np.dtype(SAMPLE_DTYPE).newbyteorder("<"))
        return array.reshape(tuple(shape))

    def sample_index(self) -> tuple[list[int], list[int]]:
        """Every sample's id and class slot, by id (no bottleneck is read)."""
        with self._lock:
            rows = self._db.execute("SELECT id, slot FROM samples ORDER BY id").fetchall()
        return [int(row[0]) for row in rows], [int(row[1]) for row in rows]

    def reader(self, shape: Sequence[int]) -> SampleReader:
        """A reader of the stored bottlenecks (of ``shape``) on its own connection."""
        return SampleReader(self.path, shape)

    # --- parameters -----------------------------------------------------------------------------

    def save_parameters(self, saved: Parameters, extra_meta: Mapping[str, Any] = {}) -> None:
        """Write parameters, optimizer state and counters in one transaction."""
        with self.transaction() as db:
            db.execute("DELETE FROM tensors")
            for kind, arrays in (
                (PARAMETERS, saved.parameters),
                (OPTIMIZER_STATE, saved.optimizer_state),
            ):
                blobs = [_to_blob(a, "float32") for a in arrays]
                db.executemany(
                    "INSERT INTO tensors (kind, idx, dtype, shape, data, crc) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (kind, i, "float32", json.dumps(list(a.shape)), blob, _crc(blob))
                        for i, (a, blob) in enumerate(zip(arrays, blobs, strict=True))
                    ],
                )
            self._set("parameters_bundle", saved.bundle_id)
            self._set("steps", str(int(saved.steps)))
            self._set("epochs", str(int(saved.epochs)))
            for key, value in extra_meta.items():
                self._set(key, value if isinstance(value, str) else json.dumps(value))

    def load_parameters(self) -> Parameters | None:
        """The saved head, or None when none was saved."""
        with self._lock:
            bundle_id = self._get("parameters_bundle")
            if bundle_id is None:
                return None
            rows = self._db.execute(
                "SELECT kind, idx, dtype, shape, data, crc FROM tensors ORDER BY kind, idx"
            ).fetchall()
            steps, epochs = int(self._get("steps") or 0), int(self._get("epochs") or 0)
        arrays: dict[str, list[np.ndarray]] = {PARAMETERS: [], OPTIMIZER_STATE: []}
        for kind, index, dtype, shape, data, crc in rows:
            if crc != _crc(data):
                raise StateFileError(f"{self.path}: the saved {kind} {index} is damaged (checksum)")
            if kind not in arrays or index != len(arrays[kind]) or dtype != "float32":
                raise StateFileError(f"{self.path}: the saved {kind} tensors are inconsistent")
            try:
                array = np.frombuffer(data, dtype=np.dtype("float32").newbyteorder("<"))
                arrays[kind].append(array.reshape(json.loads(shape)).astype(np.float32))
            except (ValueError, TypeError) as err:
                raise StateFileError(f"{self.path}: a saved {kind} has a wrong size") from err
        return Parameters(
            bundle_id,
            tuple(arrays[PARAMETERS]),
            tuple(arrays[OPTIMIZER_STATE]),
            steps,
            epochs,
        )

    def clear_parameters(self) -> None:
        """Forget the saved head (it is made again from the samples or the bundle)."""
        with self.transaction() as db:
            db.execute("DELETE FROM tensors")
            db.execute("DELETE FROM meta WHERE key IN ('parameters_bundle', 'steps', 'epochs')")

    # --- whole file -----------------------------------------------------------------------------

    def backup_to(self, target: str | Path) -> None:
        """Copy the whole database to ``target`` with SQLite's backup API (a consistent
        snapshot, also while other threads or processes write)."""
        destination = sqlite3.connect(target)
        try:
            with self._lock:
                self._db.backup(destination)
            destination.execute("PRAGMA journal_mode = DELETE")
        finally:
            destination.close()

    def size(self) -> int:
        """Bytes on disk: the database and its WAL."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total


class SampleReader:
    """Reads stored bottlenecks by id on its own connection (a WAL reader: it never blocks a
    write). Rows come as read-only float16 arrays over the bytes SQLite returned."""

    def __init__(self, path: str | Path, shape: Sequence[int]) -> None:
        """A reader of the database at ``path``, whose bottlenecks are of ``shape``."""
        self.path = Path(path)
        self._shape = tuple(int(n) for n in shape)
        self._lock = threading.Lock()
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA query_only = 1")
        except sqlite3.Error as err:
            raise StateFileError(f"{self.path} cannot be opened for reading ({err})") from err

    def rows(self, ids: Sequence[int]) -> list[np.ndarray | None]:
        """The bottlenecks of ``ids`` in that order; None for an id with no sample.

        Raises:
            SamplesChanged: the reader was closed (the daemon's state was replaced).
            StateFileError: a row is not a bottleneck of the shape, or the file cannot be read.
        """
        found: dict[int, bytes] = {}
        with self._lock:
            if self._db is None:
                raise SamplesChanged(f"{self.path} was closed")
            try:
                for start in range(0, len(ids), 500):
                    part = [int(i) for i in ids[start : start + 500]]
                    marks = ",".join("?" * len(part))
                    query = f"SELECT id, bottleneck FROM samples WHERE id IN ({marks})"
                    found.update(self._db.execute(query, part).fetchall())
            except sqlite3.Error as err:
                raise StateFileError(
                    f"reading the samples from {self.path} failed ({err})"
                ) from err
        rows = ((int(i), found.get(int(i))) for i in ids)
        return [
            None if b is None else _checked_array(self.path, i, b, self._shape) for i, b in rows
        ]

    def close(self) -> None:
        """Close the connection; later reads raise SamplesChanged."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _checked_array(path: Path, sample_id: int, blob: bytes, shape: Sequence[int]) -> np.ndarray:
    """Sample ``sample_id``'s stored bottleneck (read-only, no copy), checked against ``shape``."""
    try:
        return StateDatabase.array(blob, shape)
    except ValueError as err:
        raise StateFileError(
            f"{path}: sample {sample_id} is not a {list(shape)} bottleneck"
        ) from err


def _write_error(path: Path, err: sqlite3.Error) -> str:
    text = str(err)
    if "full" in text:
        reason = "No space left on device"
    elif "disk I/O" in text:
        reason = "Input/output error"
    elif "readonly" in text or "read-only" in text:
        reason = "Read-only file system or no write permission"
    else:
        reason = text
    return f"writing the state database {path} failed ({reason}: {text})"
