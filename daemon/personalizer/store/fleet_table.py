"""The fleet's tables: what this board knows of its group's samples and classes (fleet/).

- ``fleet_samples``: one row per sample id across boards (``uid``) that this board has heard
  of: the board that took it (``origin``), its class label with the version that set it (``ts``
  and ``author``, see fleet/clock.py), and whether it was deleted (a tombstone: a deleted sample
  never comes back from an older retained message);
- ``fleet_outbox``: the retained records this board owns on the broker, one per uid (``kind``:
  ``sample``, ``label``, ``deleted``, or ``clear`` for a tombstone to be cleared) and whether the
  broker has the newest one (``published``; ``changed`` tells a newer change from the one that
  was acknowledged);
- ``fleet_classes``: the class records heard (name, version, ``state`` = active, renamed or
  removed, ``target`` of a rename).

Plain SQL on the state database; the callers hold the store's lock and open the transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sqlite_file import StateDatabase

FLEET_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fleet_samples (uid TEXT PRIMARY KEY, origin TEXT NOT NULL,
        class TEXT NOT NULL, ts REAL NOT NULL, author TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS fleet_outbox (uid TEXT PRIMARY KEY, kind TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0, changed REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS fleet_classes (name TEXT NOT NULL, ts REAL NOT NULL,
        author TEXT NOT NULL, state TEXT NOT NULL, target TEXT,
        PRIMARY KEY (name, ts, author))""",
)


@dataclass(frozen=True)
class LedgerRow:
    """What this board knows of one sample of the group."""

    uid: str
    origin: str
    class_name: str
    ts: float
    author: str
    deleted: bool

    @property
    def version(self) -> tuple[float, str]:
        """The version of its label (or of its deletion)."""
        return (self.ts, self.author)


@dataclass(frozen=True)
class ClassRow:
    """One class record: ``name`` became ``state`` (with ``target`` for a rename) at a version."""

    name: str
    ts: float
    author: str
    state: str
    target: str | None


@dataclass(frozen=True)
class LocalSample:
    """A sample row as the fleet sees it: id, slot, time, and its ids across boards."""

    id: int
    slot: int
    created: float
    uid: str | None
    origin: str | None


class FleetTable:
    """The fleet's tables of one state database (see the module doc)."""

    def __init__(self, db: StateDatabase) -> None:
        """The tables of ``db``."""
        self._db = db

    # --- samples of the group -------------------------------------------------------------------

    def all(self) -> list[LedgerRow]:
        """Every row."""
        rows = self._db.query(
            "SELECT uid, origin, class, ts, author, deleted FROM fleet_samples ORDER BY ts"
        )
        return [_ledger(row) for row in rows]

    def put(self, row: LedgerRow) -> None:
        """Insert or replace the row of ``row.uid`` (inside a transaction)."""
        self._db.connection.execute(
            "INSERT OR REPLACE INTO fleet_samples (uid, origin, class, ts, author, deleted) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (row.uid, row.origin, row.class_name, row.ts, row.author, int(row.deleted)),
        )

    def forget(self, uids: Iterable[str]) -> None:
        """Forget the rows of ``uids`` (inside a transaction)."""
        self._db.connection.executemany(
            "DELETE FROM fleet_samples WHERE uid = ?", [(uid,) for uid in uids]
        )

    def newest_version(self) -> float:
        """The newest version time of any sample or class record (0: none)."""
        rows = self._db.query(
            "SELECT MAX(t) FROM (SELECT MAX(ts) AS t FROM fleet_samples UNION ALL "
            "SELECT MAX(ts) FROM fleet_classes)"
        )
        return float(rows[0][0] or 0.0)

    # --- the sample rows --------------------------------------------------------------------------

    def local_samples(self) -> list[LocalSample]:
        """Every sample row, by id."""
        rows = self._db.query("SELECT id, slot, created, uid, origin FROM samples ORDER BY id")
        return [LocalSample(int(r[0]), int(r[1]), float(r[2]), r[3], r[4]) for r in rows]

    def set_uid(self, sample_id: int, uid: str, origin: str) -> None:
        """Give a sample row its id across boards (inside a transaction)."""
        self._db.connection.execute(
            "UPDATE samples SET uid = ?, origin = ? WHERE id = ?", (uid, origin, sample_id)
        )

    # --- the outbox -------------------------------------------------------------------------------

    def outbox_put(self, uid: str, kind: str, changed: float) -> None:
        """Make ``kind`` this board's record of ``uid``, not yet on the broker (transaction)."""
        self._db.connection.execute(
            "INSERT OR REPLACE INTO fleet_outbox (uid, kind, published, changed) "
            "VALUES (?, ?, 0, ?)",
            (uid, kind, changed),
        )

    def outbox(self) -> dict[str, str]:
        """uid -> kind of every record this board owns on the broker."""
        return {str(u): str(k) for u, k in self._db.query("SELECT uid, kind FROM fleet_outbox")}

    def outbox_pending(self, limit: int, skip: Iterable[str] = ()) -> list[tuple[str, str, float]]:
        """Up to ``limit`` records the broker does not have yet, oldest change first:
        ``(uid, kind, changed)``, leaving out ``skip`` (those on their way)."""
        skipped = list(skip)
        marks = ",".join("?" * len(skipped))
        rows = self._db.query(
            "SELECT uid, kind, changed FROM fleet_outbox WHERE published = 0 "
            + (f"AND uid NOT IN ({marks}) " if skipped else "")
            + "ORDER BY changed LIMIT ?",
            (*skipped, limit),
        )
        return [(str(u), str(k), float(c)) for u, k, c in rows]

    def outbox_published(self, acknowledged: Iterable[tuple[str, float]]) -> None:
        """The broker has the records ``(uid, changed)``: as changed then (a newer change
        stays pending); a cleared tombstone is gone for good. One transaction."""
        items = list(acknowledged)
        with self._db.transaction() as db:
            db.executemany(
                "DELETE FROM fleet_outbox WHERE uid = ? AND changed = ? AND kind = 'clear'", items
            )
            db.executemany(
                "UPDATE fleet_outbox SET published = 1 WHERE uid = ? AND changed = ?", items
            )

    def clear_old_tombstones(self, keep: int, changed: float) -> list[str]:
        """Mark all but the newest ``keep`` of this board's tombstones to be cleared from the
        broker (inside a transaction); returns their uids."""
        rows = self._db.connection.execute(
            "SELECT uid FROM fleet_outbox WHERE kind = 'deleted' ORDER BY changed DESC "
            "LIMIT -1 OFFSET ?",
            (keep,),
        ).fetchall()
        self._db.connection.executemany(
            "UPDATE fleet_outbox SET kind = 'clear', published = 0, changed = ? WHERE uid = ?",
            [(changed, row[0]) for row in rows],
        )
        return [str(row[0]) for row in rows]

    # --- classes ----------------------------------------------------------------------------------

    def class_rows(self) -> list[ClassRow]:
        """Every class record, by name and version."""
        rows = self._db.query(
            "SELECT name, ts, author, state, target FROM fleet_classes ORDER BY name, ts, author"
        )
        return [ClassRow(str(n), float(t), str(a), str(s), t2) for n, t, a, s, t2 in rows]

    def class_put(self, row: ClassRow) -> None:
        """Keep one class record (inside a transaction)."""
        self._db.connection.execute(
            "INSERT OR REPLACE INTO fleet_classes (name, ts, author, state, target) "
            "VALUES (?, ?, ?, ?, ?)",
            (row.name, row.ts, row.author, row.state, row.target),
        )

    def class_forget(self, rows: Iterable[ClassRow]) -> None:
        """Forget class records (inside a transaction)."""
        self._db.connection.executemany(
            "DELETE FROM fleet_classes WHERE name = ? AND ts = ? AND author = ?",
            [(r.name, r.ts, r.author) for r in rows],
        )

    # --- another group ------------------------------------------------------------------------

    def forget_group(self) -> None:
        """Forget what was known of a group (joining another): its records and this board's
        records on its broker; the samples stay (inside a transaction)."""
        for table in ("fleet_samples", "fleet_outbox", "fleet_classes"):
            self._db.connection.execute(f"DELETE FROM {table}")


def _ledger(row: tuple) -> LedgerRow:
    return LedgerRow(
        str(row[0]), str(row[1]), str(row[2]), float(row[3]), str(row[4]), bool(row[5])
    )
