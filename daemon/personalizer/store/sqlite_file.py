"""The state database file: one SQLite file (WAL), its connection, transactions and meta table.

The tables live in modules of their own, each reached through an attribute of
:class:`StateDatabase`: ``classes`` (classes_table.py), ``samples`` (samples_table.py),
``head`` (head_table.py), ``review`` (review_table.py) and ``fleet`` (fleet_table.py); the
``meta`` table (key -> value: format, schema version, the bundle the samples were embedded
with, the bottleneck shape, ...) is here.

A file of an older schema is migrated in place when it is opened (:data:`MIGRATIONS`, one
transaction per step: all of a step or nothing); a newer one is refused.

Every change is one transaction, committed durably (``synchronous = FULL``: the WAL is synced at
each commit) before the caller goes on. Nothing is pickled. A file that is not such a database,
is shorter than its header says, or fails SQLite's own check raises :class:`StateFileError`.

One connection, used from several threads (commands, trainer, shutdown), serialised by
``lock``; a :class:`~.sample_reader.SampleReader` reads bottlenecks on a connection of its own.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StateFileError, StateWriteError
from .classes_table import CLASSES_SCHEMA, ClassTable
from .fleet_table import FLEET_SCHEMA, FleetTable
from .head_table import HEAD_SCHEMA, HeadTable
from .review_table import REVIEW_SCHEMA, ReviewTable
from .samples_table import SAMPLES_INDEXES, SAMPLES_MIGRATION_2, SAMPLES_SCHEMA, SampleTable

FORMAT = "personalizer-state"
SCHEMA_VERSION = 2
META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
SCHEMA = (
    META_SCHEMA,
    *CLASSES_SCHEMA,
    *SAMPLES_SCHEMA,
    *HEAD_SCHEMA,
    *REVIEW_SCHEMA,
    *FLEET_SCHEMA,
)
# What turns a file of schema N-1 into schema N, in place (one transaction each).
MIGRATIONS = {2: SAMPLES_MIGRATION_2}


def check_length(path: Path) -> None:
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


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)


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
        self.lock = threading.RLock()
        if check:
            check_length(self.path)
        try:
            self.connection = connect(self.path)
        except sqlite3.Error as err:
            raise StateFileError(f"{self.path} cannot be opened as a database ({err})") from err
        try:
            self._setup(check)
        except BaseException:
            self.connection.close()
            raise
        self.classes = ClassTable(self)
        self.samples = SampleTable(self)
        self.head = HeadTable(self)
        self.review = ReviewTable(self)
        self.fleet = FleetTable(self)

    def _setup(self, check: bool) -> None:
        db = self.connection
        try:
            if check:
                result = db.execute("PRAGMA quick_check").fetchone()
                verdict = result[0] if result else "no answer"
                if verdict != "ok":
                    raise StateFileError(f"{self.path} is damaged (SQLite's check: {verdict})")
            db.execute(f"PRAGMA journal_mode = {'WAL' if self._wal else 'DELETE'}")
            db.execute("PRAGMA synchronous = FULL")
            with self.transaction():
                for statement in SCHEMA:
                    db.execute(statement)
                fmt = self.get_meta("format")
                if fmt is None:
                    self.put_meta("format", FORMAT)
                    self.put_meta("schema_version", str(SCHEMA_VERSION))
                    self.put_meta("created", str(time.time()))
                elif fmt != FORMAT:
                    raise StateFileError(f"{self.path} is not a personalizer state database")
            version = int(self.meta("schema_version") or 0)
            if not 1 <= version <= SCHEMA_VERSION:
                raise StateFileError(
                    f"{self.path} has state schema {version}; this personalizer reads "
                    f"{SCHEMA_VERSION} and older. Upgrade the personalizer package or start fresh"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                with self.transaction():
                    for statement in MIGRATIONS[step]:
                        db.execute(statement)
                    self.put_meta("schema_version", str(step))
            for statement in SAMPLES_INDEXES:
                db.execute(statement)
        except sqlite3.DatabaseError as err:
            raise StateFileError(
                f"{self.path} is not a usable state database ({err}); it is corrupt or not a "
                "personalizer state file"
            ) from err

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        with self.lock:
            try:
                self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self.connection.close()

    # --- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction; a write error becomes :class:`StateWriteError` (OSError).

        Nested uses join the outer transaction.
        """
        with self.lock:
            db = self.connection
            if db.in_transaction:
                yield db
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException as err:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(err, sqlite3.OperationalError | sqlite3.DatabaseError) and not (
                    isinstance(err, sqlite3.IntegrityError)
                ):
                    raise StateWriteError(_write_error(self.path, err)) from err
                raise

    def query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        """Every row of one read-only statement."""
        with self.lock:
            return self.connection.execute(sql, args).fetchall()

    @contextmanager
    def attached(self, other: str | Path, alias: str) -> Iterator[None]:
        """Another database file attached as ``alias`` (for copying between files)."""
        with self.lock:
            self.connection.execute("ATTACH DATABASE ? AS " + alias, (str(other),))
            try:
                yield
            finally:
                self.connection.execute("DETACH DATABASE " + alias)

    # --- meta -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A meta value inside a transaction (or under the lock), or None."""
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put_meta(self, key: str, value: Any) -> None:
        """Set one meta value (JSON-encoded unless a string) inside a transaction."""
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value if isinstance(value, str) else json.dumps(value)),
        )

    def meta(self, key: str) -> str | None:
        """A meta value, or None."""
        with self.lock:
            return self.get_meta(key)

    def meta_json(self, key: str, default: Any = None) -> Any:
        """A meta value stored as JSON."""
        text = self.meta(key)
        return default if text is None else json.loads(text)

    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Set meta values (JSON-encoded unless strings) in one transaction."""
        with self.transaction():
            for key, value in values.items():
                self.put_meta(key, value)

    def delete_meta(self, key: str) -> None:
        """Remove one meta value."""
        with self.transaction() as db:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))

    @property
    def data_version(self) -> int:
        """Changes when *another* connection (``personalizer import``) committed a change;
        this connection's own commits leave it as it is (SQLite's ``PRAGMA data_version``)."""
        with self.lock:
            return int(self.connection.execute("PRAGMA data_version").fetchone()[0])

    # --- whole file -----------------------------------------------------------------------------

    def backup_to(self, target: str | Path) -> None:
        """Copy the whole database to ``target`` with SQLite's backup API (a consistent
        snapshot, also while other threads or processes write)."""
        destination = sqlite3.connect(target)
        try:
            with self.lock:
                self.connection.backup(destination)
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
