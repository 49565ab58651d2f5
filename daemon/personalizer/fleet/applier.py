"""Taking the group's records into this board: samples, labels, tombstones, class changes.

Runs in the command thread. Records are taken in batches (:meth:`Applier.take`, then
:meth:`Applier.commit`): every sample of a batch is embedded with this board's own base (so
boards with different bundles share), and the batch's rows (new samples, deletions, moves and
the ledger's rows) go into the state database in one transaction, then into the model. The open
set test and imprinting (``Engine.samples_changed``) run once for a batch, not once a sample.

The rules (fleet/clock.py, fleet/class_log.py): the newest label of a sample wins; a deletion is
final; a sample's class is its label followed through the class records after it. A record
that cannot be used (fleet/records.py) is refused with a reason in the log and the status, and
changes nothing. What the group sends is bounded: at most ``fleet.max_samples`` samples of other
boards are kept; class names must fit the bundle's class slots.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..commands import Command, CommandError
from ..events import SampleEvent
from ..images import ImageDecodeError, decode_image
from ..store import StateDatabase
from ..store.fleet_table import LedgerRow
from .records import ClassRecord, DeletedRecord, Record, SampleRecord

if TYPE_CHECKING:
    from ..config import FleetConfig
    from ..engine import Engine
    from .ledger import Ledger

log = logging.getLogger(__name__)

SOURCE = "fleet"  # the source of a sample that came from the group


@dataclass
class _Batch:
    """What a batch of records changes, written in one transaction."""

    inserts: dict[str, tuple[LedgerRow, str, np.ndarray, float, bytes | None]] = field(
        default_factory=dict
    )  # uid -> (row, class, bottleneck, created, jpeg)
    deletes: dict[str, int] = field(default_factory=dict)  # uid -> sample row id
    moves: dict[str, tuple[int, str]] = field(default_factory=dict)  # uid -> (row id, class)
    rows: dict[str, LedgerRow] = field(default_factory=dict)  # the ledger's rows

    def __bool__(self) -> bool:
        return bool(self.inserts or self.deletes or self.moves or self.rows)


MAX_LEFT_OUT = 10_000  # samples and messages remembered as left out (for the status)


@dataclass
class LeftOut:
    """What of the group this board did not take, and why (for the status). Keyed by sample
    id or topic, so a retained message the broker sends again is not counted twice."""

    kinds: dict[str, str] = field(default_factory=dict)  # uid or topic -> kind
    last: str | None = None  # the last reason, in words

    def count(self, kind: str) -> int:
        """How many were left out for ``kind``: limit (fleet.max_samples), no_slot (their
        class does not fit the bundle's class slots), refused (messages that cannot be used)."""
        return sum(1 for k in self.kinds.values() if k == kind)

    def add(self, key: str, kind: str, reason: str) -> None:
        """Remember ``key`` as left out for ``kind``."""
        if key in self.kinds or len(self.kinds) < MAX_LEFT_OUT:
            self.kinds[key] = kind
        self.last = reason

    def taken(self, key: str) -> None:
        """``key`` was taken after all."""
        self.kinds.pop(key, None)


class Applier:
    """Applies the group's records to the engine (see the module doc)."""

    def __init__(
        self, engine: Engine, ledger: Ledger, config: FleetConfig, max_image_pixels: int
    ) -> None:
        """Applies to ``engine`` what ``ledger`` does not know yet, within ``config``'s limits."""
        self.engine = engine
        self.ledger = ledger
        self.config = config
        self.max_image_pixels = max_image_pixels
        self.left_out = LeftOut()
        self.applying = False  # set while this applier changes the engine (not a local change)
        self.tombstones_due: list[tuple[str, tuple[float, str]]] = []  # own samples deleted
        self.new_samples = 0  # samples taken since the last training cycle was started
        self._batch = _Batch()
        self._changed_at: float | None = None  # samples changed, samples_changed() not run yet
        self._last_changed_run = 0.0
        self._reported: set[str] = set()  # reasons logged already (a retained message repeats)

    # --- refusing ---------------------------------------------------------------------------------

    def refuse(self, key: str, reason: str, kind: str = "refused") -> None:
        """Count ``key`` (a sample id or a topic) as not taken, and say why (once per reason
        in the log)."""
        self.left_out.add(key, kind, reason)
        if reason not in self._reported:
            if len(self._reported) < 1000:
                self._reported.add(reason)
            log.warning("fleet: %s", reason)

    # --- one record -------------------------------------------------------------------------------

    def _row(self, uid: str) -> LedgerRow | None:
        return self._batch.rows.get(uid) or self.ledger.rows.get(uid)

    def _stored(self, uid: str) -> int | None:
        """The sample row of ``uid`` (committed and not being deleted), or None."""
        if uid in self._batch.deletes:
            return None
        return self.ledger.id_of.get(uid)

    def take(self, record: Record) -> None:
        """Apply one sample record to the batch."""
        self.ledger.clock.heard(record.version)
        row = self._row(record.uid)
        if row is not None and row.deleted:
            if record.origin == self.ledger.board and not isinstance(record, DeletedRecord):
                # This board's own record on the broker is older than its deletion.
                self.tombstones_due.append((record.uid, row.version))
            return
        if isinstance(record, DeletedRecord):
            self._delete(
                record.uid, self.ledger.deleted_row(record.uid, record.version, record.origin)
            )
            return
        newer = row is None or record.version > row.version
        if newer:
            row = LedgerRow(
                record.uid, record.origin, record.class_name, *record.version, deleted=False
            )
        assert row is not None
        if self._stored(record.uid) is not None or record.uid in self._batch.inserts:
            if newer:
                self._batch.rows[record.uid] = row
                self._place(record.uid, row)
        elif isinstance(record, SampleRecord):
            self._insert(record, row)  # its row is written only when it is taken
        elif newer:
            self._batch.rows[record.uid] = row  # a label heard before its sample

    def _delete(self, uid: str, tombstone: LedgerRow) -> None:
        self._batch.rows[uid] = tombstone
        self._batch.inserts.pop(uid, None)
        self._batch.moves.pop(uid, None)
        sample_id = self._stored(uid)
        if sample_id is not None:
            self._batch.deletes[uid] = sample_id
        if tombstone.origin == self.ledger.board:
            self.tombstones_due.append((uid, tombstone.version))

    def _place(self, uid: str, row: LedgerRow) -> None:
        """Put a stored (or batched) sample where its newest label says."""
        placed = self.ledger.classes.resolve(row.class_name, row.version)
        if placed is None:
            self._delete(uid, replace(row, deleted=True))
            return
        target = placed[0]
        if not self._ensure_class(target, uid):  # (it may commit the batch)
            self._batch.inserts.pop(uid, None)
            return
        if uid in self._batch.inserts:
            pending = self._batch.inserts[uid]
            self._batch.inserts[uid] = (row, target, *pending[2:])
            return
        sample_id = self._stored(uid)
        if sample_id is None or self.engine.model.sample_class(sample_id) == target:
            self._batch.moves.pop(uid, None)
            return
        self._batch.moves[uid] = (sample_id, target)

    def _insert(self, record: SampleRecord, row: LedgerRow) -> None:
        placed = self.ledger.classes.resolve(row.class_name, row.version)
        if placed is None:
            self._delete(record.uid, replace(row, deleted=True))
            return
        others = self.ledger.from_others + sum(
            1 for pending in self._batch.inserts.values() if pending[0].origin != self.ledger.board
        )
        if record.origin != self.ledger.board and others >= self.config.max_samples:
            self.refuse(
                record.uid,
                f"this board keeps at most {self.config.max_samples} samples of other boards "
                "(fleet.max_samples) and has that many: the group's newer ones are left out; "
                "raise fleet.max_samples, or delete samples",
                "limit",
            )
            return
        if not self._ensure_class(placed[0], record.uid):
            return
        try:
            image = decode_image(record.jpeg, self.max_image_pixels)
        except ImageDecodeError as exc:
            self.refuse(
                record.uid,
                f"sample {record.uid} of board {record.origin} was not taken: its picture "
                f"cannot be used ({exc}); delete it on that board and take it again",
            )
            return
        bottleneck = self.engine.model.bottleneck(image)
        jpeg = record.jpeg if self.engine.store.store_images else None
        self._batch.rows[record.uid] = row
        self._batch.inserts[record.uid] = (row, placed[0], bottleneck, record.created, jpeg)

    def _ensure_class(self, name: str, uid: str | None = None) -> bool:
        """Class ``name`` is on this board (added when missing, if a slot is free); else the
        sample ``uid`` is left out."""
        if name in self.engine.model.classes:
            return True
        self.commit()  # a class change is a command of its own: the batch goes first
        try:
            self._class_command({"add": name})
        except CommandError as exc:
            self.refuse(
                uid or f"class {name}",
                f"class {name!r} of the group cannot be added here ({exc.reason}); its "
                "samples are left out",
                "no_slot",
            )
            return False
        return True

    def _class_command(self, payload: dict[str, Any]) -> None:
        self.applying = True
        try:
            self.engine.execute(Command.local("class", payload, SOURCE))
        finally:
            self.applying = False

    # --- class records ----------------------------------------------------------------------------

    def take_classes(self, records: list[ClassRecord]) -> None:
        """Apply a board's class records: new ones change this board's classes."""
        self.commit()
        fresh = self.ledger.add_classes(records)
        for record in sorted(fresh, key=lambda r: r.version):
            if record.state == "active":
                latest = self.ledger.classes.latest(record.name)
                if latest == record and record.name not in self.engine.model.classes:
                    self._ensure_class(record.name)
            else:
                self._regroup(record.name)
        self.commit()

    def _regroup(self, name: str) -> None:
        """After a rename or removal of ``name``: its samples go where their labels lead now,
        and the class goes when the group's newest record says so and it is empty."""
        model = self.engine.model
        if name not in model.classes:
            return
        members = [self.ledger.uid_of.get(i) for i in model.sample_ids(name)]
        targets: dict[str, str | None] = {}
        for uid in members:
            if uid is not None:
                placed = self.ledger.label(uid)
                targets[uid] = None if placed is None else placed[0]
        latest = self.ledger.classes.latest(name)
        stays = latest is not None and latest.state == "active"
        destinations = set(targets.values())
        whole = len(targets) == len(members) and len(destinations) == 1 and not stays
        if whole and None not in destinations and name not in destinations:
            target = next(iter(destinations))
            if target not in model.classes:  # a plain rename: what the head learnt stays
                self._class_command({"rename": name, "to": target})
                return
        for uid, target in targets.items():
            if target is None:
                row = self.ledger.rows[uid]
                self._delete(uid, replace(row, deleted=True))
            elif target != name and self._ensure_class(target, uid):
                self._batch.moves[uid] = (self.ledger.id_of[uid], target)
        self.commit()
        if not stays and name in model.classes and model.samples().get(name, 0) == 0:
            self._class_command({"remove": name})

    # --- the batch --------------------------------------------------------------------------------

    def pending(self) -> int:
        """Records waiting in the batch."""
        return len(self._batch.inserts) + len(self._batch.deletes) + len(self._batch.moves)

    def commit(self) -> None:
        """Write the batch (one transaction), then apply it to the model."""
        batch, self._batch = self._batch, _Batch()
        if not batch:
            return
        engine, ledger = self.engine, self.ledger
        model = engine.model
        slots = {name: model.class_registry.slot_of(name) for name in model.classes}
        inserts = [(uid, *v) for uid, v in batch.inserts.items() if v[1] in slots]
        ids: list[int] = []

        def write(db: StateDatabase) -> None:
            with db.transaction():
                for _, row, name, bottleneck, created, jpeg in inserts:
                    ids.append(
                        db.samples.add(
                            slots[name], bottleneck, SOURCE, created, jpeg, row.uid, row.origin
                        )
                    )
                for sample_id in batch.deletes.values():
                    db.samples.delete(sample_id)
                for sample_id, name in batch.moves.values():
                    db.samples.relabel(sample_id, slots[name])
                ledger.put_rows(db, batch.rows.values())

        try:
            engine.store.write("storing samples from the group", write)
        except OSError as exc:
            # Nothing was written: the broker still has them, and sends them again at the
            # next (re)connect.
            self.refuse(
                "store",
                f"samples from the group could not be stored ({exc}); they are taken when the "
                "broker sends them again (at the next reconnect)",
            )
            return
        ledger.remember(batch.rows.values())
        added: Counter[str] = Counter()
        for (uid, row, name, bottleneck, _, _), sample_id in zip(inserts, ids, strict=True):
            model.add_sample_bottleneck(bottleneck, name, sample_id)
            ledger.stored(uid, sample_id, row.origin)
            self.left_out.taken(uid)
            added[name] += 1
        for uid, sample_id in batch.deletes.items():
            model.remove_sample(sample_id)
            ledger.unstored(uid)
        for sample_id, name in batch.moves.values():
            model.relabel_sample(sample_id, name)
        if batch.deletes or batch.moves:
            log.info(
                "fleet: the group deleted %d and moved %d sample(s) of this board",
                len(batch.deletes),
                len(batch.moves),
            )
        if inserts or batch.deletes or batch.moves:
            self._changed_at = self._changed_at or time.monotonic()
        if inserts:
            self.new_samples += len(inserts)
            counts = model.samples()
            now = time.time()
            for name in added:
                engine.events.sample(SampleEvent(name, int(counts.get(name, 0)), SOURCE, now))
            log.info(
                "fleet: took %d sample(s) from the group (%s)",
                len(inserts),
                ", ".join(f"{name} {n}" for name, n in added.items()),
            )

    def settle(self, burst_over: bool) -> bool:
        """After samples changed: the open-set test and imprinting, once the burst is over (or
        a second after the last time, so a long catch-up shows progress). Returns whether
        samples changed (then the caller announces the status)."""
        if self._changed_at is None:
            return False
        if not burst_over and time.monotonic() - self._last_changed_run < 1.0:
            return False
        self._changed_at = None
        self._last_changed_run = time.monotonic()
        self.engine.samples_changed()
        return True
