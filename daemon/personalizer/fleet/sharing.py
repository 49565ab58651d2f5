"""This board's side of the fleet: what is taught here becomes the group's.

The engine tells every change of the taught state (engine/changes.py) in the command thread;
:meth:`Sharing.changed` only queues it, and :meth:`Sharing.absorb` (in the fleet's turn of the
command thread) gives each change its version (fleet/clock.py) and writes it to the ledger in
one transaction: a new sample gets its id across boards, a deletion its tombstone, a class
change its class record. A sharing board (``mode = "share"``) also puts its records into the
outbox (store/fleet_table.py), and :meth:`Sharing.publish` sends them as retained messages,
at most :data:`WINDOW` at a time (paho's queue is bounded), until the broker acknowledged each;
what was not acknowledged when the connection dropped is sent again after the next connect. A
following board writes the same rows and publishes nothing: its local changes stand against
older records of the group, which the broker sends again at every connect.

Tombstones are bounded: beyond ``fleet.max_tombstones`` the oldest are cleared from the broker
(an empty retained message).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..engine.changes import (
    Change,
    ClassAdded,
    ClassRemoved,
    ClassRenamed,
    SampleDeleted,
    SampleRelabelled,
    SampleTaken,
)
from ..errors import DamagedSampleError
from ..mqtt.topics import FleetTopics
from ..store import StateDatabase
from ..store.fleet_table import LedgerRow
from . import records
from .ledger import new_uid
from .records import ClassRecord, DeletedRecord, LabelRecord, SampleRecord, Version

if TYPE_CHECKING:
    from ..config import FleetConfig
    from ..engine import Engine
    from .ledger import Ledger

log = logging.getLogger(__name__)

WINDOW = 32  # records sent and not yet acknowledged
CLASSES = "classes"  # the in-flight key of this board's classes message


class Delivery(Protocol):
    """A message on its way to the broker (paho's MQTTMessageInfo)."""

    def is_published(self) -> bool:
        """True once the broker acknowledged it."""
        ...


class FleetTransport(Protocol):
    """The broker connection as the fleet uses it (mqtt/client.py's MqttClient; tests use an
    in-process broker)."""

    def subscribe(self, pattern: str, handler: Callable[[str, bytes], None]) -> None:
        """Receive ``pattern``'s messages from now on (and its retained ones again)."""
        ...

    def fetch_retained(self, topics: list[str]) -> None:
        """Have the broker send the retained messages of exactly ``topics`` again."""
        ...

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every (re)connect."""
        ...

    def add_publish_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when the broker acknowledged a message."""
        ...

    def publish_retained(self, topic: str, payload: bytes) -> Delivery | None:
        """Publish a retained message (QoS 1); None when it could not be sent now."""
        ...


class Sharing:
    """Local changes into the ledger and, for a sharing board, onto the broker."""

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        config: FleetConfig,
        transport: FleetTransport,
        topics: FleetTopics,
    ) -> None:
        """Follows ``engine``'s changes for ``ledger``; publishes through ``transport``."""
        self.engine = engine
        self.ledger = ledger
        self.config = config
        self.transport = transport
        self.topics = topics
        self.share = config.mode == "share"
        self._changes: deque[Change] = deque()
        self._inflight: dict[str, tuple[float, Delivery]] = {}
        self._classes_due = False  # this board's classes message is to be sent

    # --- local changes ------------------------------------------------------------------------

    def changed(self, change: Change) -> None:
        """The engine changed the taught state here (command thread): queue it."""
        self._changes.append(change)

    def waiting(self) -> bool:
        """True while local changes wait to be absorbed."""
        return bool(self._changes)

    def absorb(self) -> None:
        """Give the queued local changes their versions and rows (one transaction; the
        ledger's memory follows each change at once, so a later change of the same batch sees
        it, and is read again from the database when the transaction fails)."""
        changes = []
        while self._changes:
            changes.append(self._changes.popleft())
        if not changes:
            return
        classes: list[ClassRecord] = []

        def write(db: StateDatabase) -> None:
            with db.transaction():
                for change in changes:
                    self._absorb(db, change, classes)
                if self.share:
                    now = time.time()
                    for uid in db.fleet.clear_old_tombstones(self.config.max_tombstones, now):
                        self.ledger.outbox[uid] = "clear"

        try:
            self.engine.store.write("recording changes for the fleet", write)
        except OSError as exc:
            log.error(
                "fleet: %s; the samples taken meanwhile are shared at the next start, and "
                "the deletions, moves and class changes made meanwhile stay on this board",
                exc,
            )
            self.ledger.reread()
            return
        if classes:
            self.ledger.add_classes(classes)
            self._classes_due = self.share

    def _absorb(self, db: StateDatabase, change: Change, classes: list[ClassRecord]) -> None:
        ledger = self.ledger
        if isinstance(change, SampleTaken):
            uid, version = new_uid(), ledger.clock.next()
            db.fleet.set_uid(change.sample_id, uid, ledger.board)
            row = LedgerRow(uid, ledger.board, change.class_name, *version, deleted=False)
            db.fleet.put(row)
            ledger.taken(row, change.sample_id)
            self._outbox(db, uid, "sample")
        elif isinstance(change, SampleDeleted):
            uid = ledger.uid_of.get(change.sample_id)
            if uid is None:
                return
            row = ledger.deleted_row(uid, ledger.clock.next())
            db.fleet.put(row)
            ledger.gone(row)
            self._outbox(db, uid, "deleted")
        elif isinstance(change, SampleRelabelled):
            uid = ledger.uid_of.get(change.sample_id)
            known = ledger.rows.get(uid) if uid is not None else None
            if uid is None or known is None:
                return
            version = ledger.clock.next()
            row = replace(known, class_name=change.class_name, ts=version[0], author=version[1])
            db.fleet.put(row)
            ledger.remember([row])
            self._outbox(db, uid, "sample" if row.origin == ledger.board else "label")
        elif isinstance(change, ClassAdded):
            classes.append(ClassRecord(change.name, "active", None, ledger.clock.next()))
        elif isinstance(change, ClassRenamed):
            version = ledger.clock.next()
            classes.append(ClassRecord(change.old, "renamed", change.new, version))
            classes.append(ClassRecord(change.new, "active", None, version))
        elif isinstance(change, ClassRemoved):
            version = ledger.clock.next()
            classes.append(ClassRecord(change.name, "removed", None, version))
            # Its samples went with it: their tombstones free the pictures of this board's own
            # samples on the broker (the other boards remove the class by its record). The
            # samples are those of the removal, not of the model now: a sample deleted since
            # is a change of its own, published as such.
            for sample_id in change.sample_ids:
                uid = ledger.uid_of.get(sample_id)
                if uid is None:
                    continue
                row = ledger.deleted_row(uid, version)
                db.fleet.put(row)
                ledger.gone(row)
                if row.origin == ledger.board:
                    self._outbox(db, uid, "deleted")

    def _outbox(self, db: StateDatabase, uid: str, kind: str) -> None:
        if self.share:
            db.fleet.outbox_put(uid, kind, time.time())
            self.ledger.outbox[uid] = kind

    def tombstone_own(self, uids: list[tuple[str, Version]]) -> None:
        """Samples this board took were deleted through the group: their records on the broker
        become tombstones (so their pictures leave it)."""
        if not self.share or not uids:
            return
        fresh = [uid for uid, _ in uids if self.ledger.outbox.get(uid) not in ("deleted", "clear")]

        def write(db: StateDatabase) -> None:
            with db.transaction():
                for uid in fresh:
                    db.fleet.outbox_put(uid, "deleted", time.time())

        if fresh:
            self.engine.store.write("recording deletions for the fleet", write)
            for uid in fresh:
                self.ledger.outbox[uid] = "deleted"

    # --- the broker ---------------------------------------------------------------------------

    def on_its_way(self) -> bool:
        """True while records wait for the broker's acknowledgement (any thread)."""
        return bool(self._inflight)

    def room(self) -> bool:
        """True while the window has room for more records."""
        return len(self._inflight) < WINDOW

    def connected(self) -> None:
        """After a (re)connect: what was on its way is sent again, and the classes message."""
        self._inflight.clear()
        self._classes_due = self.share and bool(
            self.ledger.own_class_records(records.MAX_CLASS_RECORDS)
        )

    def publish(self) -> bool:
        """Send what the broker does not have yet, within the window; True when more may be
        waiting to be sent (the window was full). Acknowledgements call for the next turn."""
        if not self.share:
            return False
        acknowledged = [
            (uid, changed) for uid, (changed, info) in self._inflight.items() if info.is_published()
        ]
        for uid, _ in acknowledged:
            del self._inflight[uid]
        samples = [(uid, changed) for uid, changed in acknowledged if uid != CLASSES]
        if samples:
            self.engine.store.write(
                "recording what the broker has", lambda db: db.fleet.outbox_published(samples)
            )
            for uid, _ in samples:
                if self.ledger.outbox.get(uid) == "clear":
                    self.ledger.outbox.pop(uid, None)
        if self._classes_due and CLASSES not in self._inflight:
            payload = records.encode_classes(
                self.ledger.board, self.ledger.own_class_records(records.MAX_CLASS_RECORDS)
            )
            info = self.transport.publish_retained(self.topics.classes, payload)
            if info is not None:
                self._inflight[CLASSES] = (0.0, info)
                self._classes_due = False
        room = WINDOW - len(self._inflight)
        pending = []
        if room > 0:
            pending = self.engine.store.read(
                lambda db: db.fleet.outbox_pending(room, skip=list(self._inflight))
            )
        for uid, kind, changed in pending:
            payload = self._payload(uid, kind)
            info = self.transport.publish_retained(self.topics.sample(uid), payload)
            if info is None:
                break  # not connected, or paho's queue is full: later
            self._inflight[uid] = (changed, info)
        return bool(self._classes_due or len(pending) == room > 0)

    def _payload(self, uid: str, kind: str) -> bytes:
        """The retained message of this board's record ``kind`` of ``uid``."""
        ledger = self.ledger
        row = ledger.rows.get(uid)
        if kind == "clear" or row is None:
            return b""  # an empty retained message clears the topic
        if kind == "sample" and not row.deleted:
            sample = self._sample(uid)
            if sample is not None:
                created, jpeg = sample
                return records.encode(
                    SampleRecord(uid, row.origin, row.class_name, created, row.version, jpeg)
                )
            kind = "deleted"
        if kind == "label" and not row.deleted:
            return records.encode(LabelRecord(uid, row.origin, row.class_name, row.version))
        return records.encode(DeletedRecord(uid, row.origin, row.version))

    def _sample(self, uid: str) -> tuple[float, bytes] | None:
        sample_id = self.ledger.id_of.get(uid)
        if sample_id is None:
            return None
        store = self.engine.store
        try:
            info = store.read(lambda db: db.samples.info(sample_id))
            jpeg = store.image(sample_id)
        except DamagedSampleError as exc:
            log.warning("fleet: sample %d cannot be shared: %s", sample_id, exc)
            return None
        if info is None or jpeg is None:
            return None
        return info.created, jpeg

    def counts(self) -> dict[str, Any]:
        """What this board keeps on the broker, for the status."""
        kinds = list(self.ledger.outbox.values())
        return {
            "samples": kinds.count("sample"),
            "tombstones": kinds.count("deleted"),
            "on_its_way": len(self._inflight),
        }
