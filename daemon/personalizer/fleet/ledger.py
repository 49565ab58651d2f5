"""What this board knows of its group: the samples' labels and tombstones, the class records,
which sample row is which group sample, and the clock of its own changes.

The tables are in the state database (store/fleet_table.py); the ledger keeps them in memory
too (a few hundred bytes a sample, bounded by the group limits), so a retained message that the
broker sends again at every (re)connect is recognised without touching the disk. Every change
goes to the database first (one transaction), then to memory.

Used only from the command thread (and from the main thread at start, before it runs).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..store import StateDatabase, StateStore
from ..store.fleet_table import ClassRow, LedgerRow
from .class_log import ClassLog
from .clock import FleetClock
from .records import ClassRecord, Version

log = logging.getLogger(__name__)

GROUP = "fleet_group"  # meta: the group this state's records belong to
JOINED = "fleet_joined"  # meta: {"group", "mode", "published", "ts"} of the last join


def new_uid() -> str:
    """A sample id unique across boards (128 random bits)."""
    return uuid.uuid4().hex


class Ledger:
    """The fleet's knowledge of one board (see the module doc)."""

    def __init__(self, store: StateStore, board: str, group: str) -> None:
        """The ledger of ``board`` in ``group``, kept in ``store``."""
        self.store = store
        self.board = board
        self.group = group
        self.rows: dict[str, LedgerRow] = {}
        self.uid_of: dict[int, str] = {}  # sample row id -> uid
        self.id_of: dict[str, int] = {}  # uid -> sample row id
        self.outbox: dict[str, str] = {}  # uid -> kind of this board's record on the broker
        self.classes = ClassLog()
        self.clock = FleetClock(board)
        self.from_others = 0  # sample rows taken by other boards
        self.loaded = -1  # the store's load count this ledger was read at

    # --- loading ----------------------------------------------------------------------------------

    def load(self, share: bool, mode: str) -> tuple[int, bool]:
        """Read the tables, and give every sample row its place: an id across boards, a row
        of its label, and (``share``) a record of this board's own samples to publish.
        Returns how many own samples are to be published now, and whether the board joined
        the group just now (its first start in it). The join is recorded (``joined``): when,
        in which mode, and how many of the board's earlier samples it published then; so is
        a following board that starts sharing."""
        db_group = self.store.read(lambda db: db.meta(GROUP))
        joined = db_group != self.group
        if joined and db_group:
            log.warning(
                "fleet: this board was in group %r and is now in %r: what it knew of the old "
                "group is forgotten (its samples stay)",
                db_group,
                self.group,
            )
            self.store.write("switching the fleet group", lambda db: _forget_group(db))
        before = self.joined
        published = self.store.write("placing the samples in the fleet", self._place_rows(share))
        self.reread()
        if joined or (before is not None and before.get("mode") != mode):
            info = {"group": self.group, "mode": mode, "published": published, "ts": time.time()}
            meta = {GROUP: self.group, JOINED: info}
            self.store.write("recording the fleet group", lambda db: db.set_meta(meta))
        return published, joined

    def _place_rows(self, share: bool) -> Callable[[StateDatabase], int]:
        def place(db: StateDatabase) -> int:
            slots = db.classes.all()
            known = {row.uid for row in db.fleet.all()}
            outbox = db.fleet.outbox()
            published = 0
            with db.transaction():
                for sample in db.fleet.local_samples():
                    uid, origin = sample.uid, sample.origin
                    if uid is None or origin is None:
                        uid, origin = uid or new_uid(), origin or self.board
                        db.fleet.set_uid(sample.id, uid, origin)
                    if uid not in known:
                        name = slots.get(sample.slot, "")
                        row = LedgerRow(uid, origin, name, sample.created, origin, False)
                        db.fleet.put(row)
                    if share and origin == self.board and uid not in outbox:
                        db.fleet.outbox_put(uid, "sample", time.time())
                        published += 1
            return published

        return place

    def reread(self) -> None:
        """Read the tables into memory (at start, and after the state was reloaded)."""

        def read(db: StateDatabase) -> tuple[Any, ...]:
            return (
                db.fleet.all(),
                db.fleet.local_samples(),
                db.fleet.outbox(),
                db.fleet.class_rows(),
                db.fleet.newest_version(),
            )

        rows, samples, outbox, class_rows, newest = self.store.read(read)
        self.rows = {row.uid: row for row in rows}
        self.uid_of = {s.id: s.uid for s in samples if s.uid is not None}
        self.id_of = {uid: sample_id for sample_id, uid in self.uid_of.items()}
        self.from_others = sum(1 for s in samples if s.origin not in (None, self.board))
        self.outbox = outbox
        self.classes = ClassLog(
            ClassRecord(r.name, r.state, r.target, (r.ts, r.author)) for r in class_rows
        )
        self.clock = FleetClock(self.board, max(newest, self.clock.next()[0]))
        self.loaded = self.store.loads

    @property
    def joined(self) -> dict[str, Any] | None:
        """When this board joined its group and how many of its samples it published then."""
        info = self.store.read(lambda db: db.meta_json(JOINED))
        return info if isinstance(info, dict) and info.get("group") == self.group else None

    # --- samples ----------------------------------------------------------------------------------

    def label(self, uid: str) -> tuple[str, Version] | None:
        """Where the sample ``uid`` belongs now (its label through the class records), or
        None (deleted, or unknown)."""
        row = self.rows.get(uid)
        if row is None or row.deleted:
            return None
        return self.classes.resolve(row.class_name, row.version)

    def stored(self, uid: str, sample_id: int, origin: str) -> None:
        """The sample row ``sample_id`` is the group sample ``uid`` (after its commit)."""
        self.uid_of[sample_id] = uid
        self.id_of[uid] = sample_id
        if origin != self.board:
            self.from_others += 1

    def unstored(self, uid: str) -> int | None:
        """The sample row of ``uid`` is gone (after its commit); returns its id."""
        sample_id = self.id_of.pop(uid, None)
        if sample_id is not None:
            self.uid_of.pop(sample_id, None)
            row = self.rows.get(uid)
            if row is not None and row.origin != self.board:
                self.from_others -= 1
        return sample_id

    def taken(self, row: LedgerRow, sample_id: int) -> None:
        """The sample row ``sample_id`` is the group sample of ``row`` (after its commit)."""
        self.remember([row])
        self.stored(row.uid, sample_id, row.origin)

    def gone(self, row: LedgerRow) -> None:
        """The sample of ``row`` (a tombstone) is gone (after its commit)."""
        self.unstored(row.uid)
        self.remember([row])

    def put_rows(self, db: StateDatabase, rows: Iterable[LedgerRow]) -> None:
        """Write rows (inside a transaction); :meth:`remember` them after the commit."""
        for row in rows:
            db.fleet.put(row)

    def remember(self, rows: Iterable[LedgerRow]) -> None:
        """Take committed rows into memory."""
        for row in rows:
            self.rows[row.uid] = row

    def deleted_row(self, uid: str, version: Version, origin: str | None = None) -> LedgerRow:
        """The tombstone of ``uid`` at ``version``."""
        row = self.rows.get(uid)
        if row is None:
            return LedgerRow(uid, origin or self.board, "", version[0], version[1], True)
        return replace(row, ts=version[0], author=version[1], deleted=True)

    def to_forget(self, max_tombstones: int, max_unseen: int) -> list[str]:
        """Rows beyond the limits, oldest first: tombstones beyond ``max_tombstones`` (never
        one that this board still keeps on the broker) and labels of samples never received
        beyond ``max_unseen``."""
        deleted = [r for r in self.rows.values() if r.deleted]
        unseen = [r for r in self.rows.values() if not r.deleted and r.uid not in self.id_of]
        gone = []
        for rows, keep in ((deleted, max_tombstones), (unseen, max_unseen)):
            if len(rows) > keep:
                rows.sort(key=lambda r: r.version)
                gone += [
                    r.uid for r in rows[: len(rows) - keep] if self.outbox.get(r.uid) != "deleted"
                ]
        return gone

    def forget(self, uids: list[str]) -> None:
        """Drop rows from memory (after their deletion was committed)."""
        for uid in uids:
            self.rows.pop(uid, None)

    # --- classes ----------------------------------------------------------------------------------

    def add_classes(self, records: Iterable[ClassRecord]) -> list[ClassRecord]:
        """Keep class records (database, then memory); returns those that were new."""
        candidates = [r for r in records if self.classes.latest(r.name) != r]
        fresh = []
        probe = ClassLog(self.classes.records())
        for record in candidates:
            if probe.add(record):
                fresh.append(record)
        if not fresh:
            return []
        gone = probe.forget_beyond_limits()

        def write(db: StateDatabase) -> None:
            with db.transaction():
                for record in fresh:
                    db.fleet.class_put(_class_row(record))
                db.fleet.class_forget(_class_row(record) for record in gone)

        self.store.write("keeping the group's class changes", write)
        self.classes = probe
        for record in fresh:
            self.clock.heard(record.version)
        return fresh

    def own_class_records(self, limit: int) -> list[ClassRecord]:
        """The newest ``limit`` class records this board made (what it publishes)."""
        own = [r for r in self.classes.records() if r.version[1] == self.board]
        return sorted(own, key=lambda r: r.version)[-limit:]


def _class_row(record: ClassRecord) -> ClassRow:
    return ClassRow(record.name, *record.version, record.state, record.target)


def _forget_group(db: StateDatabase) -> None:
    with db.transaction():
        db.fleet.forget_group()
