"""The fleet of one board: its group's messages in, what is taught here out, its status.

:class:`Fleet` wires the parts (docs/threads.md):

- paho's network thread hands every message of the group to :meth:`Fleet.receive`, which only
  queues it (fleet/inbox.py, bounded) and asks for a turn in the command thread;
- the engine tells every local change to :meth:`Fleet.changed` (command thread), which only
  queues it (fleet/sharing.py);
- :meth:`Fleet.turn` runs in the command thread, as a job of the command queue: it absorbs the
  local changes, publishes, and applies the group's records for at most :data:`TURN_SECONDS`
  (fleet/applier.py), then queues itself again behind the commands that came meanwhile, so a
  burst of 500 samples never holds a command up for long;
- :meth:`Fleet.idle` (the command loop's idle time) starts the training cycle that new samples
  from the group ask for (``fleet.train_delay`` after the last of them), rereads the ledger after
  `personalizer import`, and trims it to its limits.

:meth:`Fleet.status` is read from any thread that builds a status report: it returns a
snapshot that the command thread replaces in one assignment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.changes import Change
from ..errors import NoSamplesError
from ..mqtt.topics import FleetTopics
from ..store import StateDatabase
from .applier import Applier
from .inbox import Arrival, Inbox
from .ledger import Ledger
from .records import RecordError, read_classes_topic, read_sample_topic
from .sharing import FleetTransport, Sharing

if TYPE_CHECKING:
    from ..config import FleetConfig
    from ..engine import Engine

log = logging.getLogger(__name__)

TURN_SECONDS = 0.15  # the longest the group's records hold the command thread in one turn
TRIM_INTERVAL = 10.0  # seconds between checks of the ledger's limits
MAX_BOARDS = 1000  # board names remembered for the status
Schedule = Callable[[Callable[[], None]], bool]  # queue a task for the command thread


class Fleet:
    """One board's membership of a fleet group (see the module doc)."""

    def __init__(
        self,
        config: FleetConfig,
        engine: Engine,
        transport: FleetTransport,
        schedule: Schedule,
        max_image_pixels: int = 4096 * 4096,
    ) -> None:
        """The fleet of ``engine``'s board; ``schedule`` queues a turn in the command thread.
        Subscribes to the group at once (the messages wait until :meth:`open`)."""
        self.config = config
        self.engine = engine
        self.transport = transport
        self._schedule_task = schedule
        self.topics = FleetTopics(config.topic_prefix, config.group, config.board)
        self.ledger = Ledger(engine.store, config.board, config.group)
        self.inbox = Inbox(config.max_payload_bytes)
        self.applier = Applier(engine, self.ledger, config, max_image_pixels)
        self.sharing = Sharing(engine, self.ledger, config, transport, self.topics)
        self._scheduled = threading.Event()  # a turn is queued
        self._reconnected = threading.Event()
        self._opened = False
        self._train_due: float | None = None
        self._trimmed = 0.0
        self._boards: set[str] = set()
        self._snapshot: dict[str, Any] = {}
        self._joined: dict[str, Any] | None = None
        for pattern in self.topics.subscriptions:
            transport.subscribe(pattern, self.receive)
        transport.add_connect_listener(self._connected)
        transport.add_publish_listener(self._acknowledged)

    # --- start --------------------------------------------------------------------------------

    def open(self) -> None:
        """Read the ledger and place every sample in the group (after the state was loaded;
        before the command thread runs). Says in the log whether this board's earlier
        samples are published now."""
        share = self.config.mode == "share"
        board, group = self.config.board, self.config.group
        try:
            published, joined = self.ledger.load(share, self.config.mode)
        except OSError as exc:  # the state cannot be written (a full disk): the board runs on
            warning = (
                f"fleet: group {group!r} is off until the next start: {exc}; free some space "
                "on the state folder's disk, then restart"
            )
            log.error("%s", warning)
            self.engine.status.warn(warning)
            return
        if joined:
            if share:
                log.info(
                    "fleet: joined group %r as board %r (share): %d sample(s) taken here "
                    "before joining are published once",
                    group,
                    board,
                    published,
                )
            else:
                log.info(
                    "fleet: joined group %r as board %r (follow): this board takes the group's "
                    "samples and publishes nothing",
                    group,
                    board,
                )
        elif published:
            log.info(
                "fleet: %d sample(s) of this board not yet in group %r (taken while it "
                "followed, or imported) are published once",
                published,
                group,
            )
        else:
            log.info("fleet: board %r in group %r (%s)", board, group, self.config.mode)
        self._joined = self.ledger.joined
        self._opened = True
        self._refresh_status()
        self._schedule()

    # --- what other threads call ----------------------------------------------------------------

    def receive(self, topic: str, payload: bytes) -> None:
        """A message of the group (paho's thread): queue it, ask for a turn."""
        parsed = self.topics.parse(topic)
        other = parsed is not None and parsed[0] != self.config.board
        self.inbox.put(topic, payload, other)
        self._schedule()

    def changed(self, change: Change) -> None:
        """A local change of the taught state (the engine's listener, command thread)."""
        if self.applier.applying:
            return  # the fleet's own doing: it is the group's change, not this board's
        self.sharing.changed(change)
        self._schedule()

    def _connected(self) -> None:
        self._reconnected.set()
        self._schedule()

    def _acknowledged(self) -> None:
        # Any message's acknowledgement (predictions too): only records on their way matter.
        if self.sharing.on_its_way():
            self._schedule()

    def _schedule(self) -> None:
        if self._opened and not self._scheduled.is_set():
            self._scheduled.set()
            if not self._schedule_task(self.turn):
                self._scheduled.clear()  # the queue is full: idle() asks again

    # --- the command thread -------------------------------------------------------------------

    def _follow_reload(self) -> None:
        """After `personalizer import` loaded another state: place its samples in the group."""
        if self.engine.store.loads == self.ledger.loaded:
            return
        published, _ = self.ledger.load(self.config.mode == "share", self.config.mode)
        if published:
            log.info(
                "fleet: %d imported sample(s) of this board are published to group %r once",
                published,
                self.config.group,
            )
            self._schedule()
        self._refresh_status()

    def turn(self) -> None:
        """One turn in the command thread (see the module doc)."""
        self._scheduled.clear()
        self._follow_reload()
        if self._reconnected.is_set():
            self._reconnected.clear()
            self.sharing.connected()
        self.sharing.absorb()
        self.sharing.publish()
        started = time.monotonic()
        while time.monotonic() - started < TURN_SECONDS:
            arrival = self.inbox.take()
            if arrival is None:
                break
            self._take(arrival)
        self.applier.commit()
        self.sharing.tombstone_own(self.applier.tombstones_due)
        self.applier.tombstones_due = []
        caught_up = len(self.inbox) == 0
        if self.applier.settle(burst_over=caught_up):
            self._announce()
        if self.applier.new_samples and self.config.train:
            self._train_due = time.monotonic() + self.config.train_delay
        dropped = self.inbox.dropped()
        if dropped is not None:
            topics, everything = dropped
            log.warning(
                "fleet: the group's messages came faster than this board took them and %s "
                "were dropped; asking the broker for them again",
                "very many" if everything else len(topics),
            )
            if everything:
                for pattern in self.topics.subscriptions:
                    self.transport.subscribe(pattern, self.receive)
            else:
                self.transport.fetch_retained(topics)
        more = self.sharing.publish()
        self._duties()
        if not caught_up or self.sharing.waiting() or (more and self.sharing.room()):
            self._schedule()  # (a full window: the acknowledgements call for the next turn)

    def _take(self, arrival: Arrival) -> None:
        parsed = self.topics.parse(arrival.topic)
        if parsed is None:
            return
        board, kind, uid = parsed
        if len(self._boards) < MAX_BOARDS:
            self._boards.add(board)
        if arrival.payload is None:
            self.applier.refuse(
                arrival.topic,
                f"the group message on {arrival.topic} has {arrival.size} bytes, more than "
                f"fleet.max_payload_bytes ({self.config.max_payload_bytes}); it was not read. "
                "Raise the limit if that board's samples are that large, or clear it: "
                f"mosquitto_pub -r -n -t '{arrival.topic}'",
            )
            return
        if not arrival.payload:
            return  # a cleared retained message: nothing to take
        try:
            if kind == "classes":
                self.applier.take_classes(read_classes_topic(arrival.topic, board, arrival.payload))
            else:
                assert uid is not None
                self.applier.take(read_sample_topic(arrival.topic, board, uid, arrival.payload))
        except RecordError as exc:
            self.applier.refuse(arrival.topic, str(exc))
        except Exception as exc:  # whatever a message does, the board goes on with the next
            log.exception("fleet: taking the group message on %s failed", arrival.topic)
            self.applier.refuse(
                arrival.topic,
                f"the group message on {arrival.topic} could not be taken ({exc}); please "
                "report it with the log",
            )

    def idle(self) -> None:
        """The command loop's idle time: a turn when one could not be queued, the open-set
        test after a burst, and the duties of :meth:`_duties`."""
        if not self._opened:
            return
        self._follow_reload()
        if len(self.inbox) or self.sharing.waiting() or self.sharing.on_its_way():
            self._schedule()
        if self.applier.settle(burst_over=True):
            self._announce()
        self._duties()
        self._refresh_status()

    def _duties(self) -> None:
        """What is due by time (after a turn, and when the command thread is idle): the
        training cycle new samples asked for, and trimming the ledger to its limits."""
        due = self._train_due
        if due is not None and time.monotonic() >= due and self.inbox_quiet():
            self._train_due = None
            self._train()
        if time.monotonic() - self._trimmed > TRIM_INTERVAL:
            self._trimmed = time.monotonic()
            self.trim()

    def inbox_quiet(self) -> bool:
        """True when no group message waits and no batch is open."""
        return len(self.inbox) == 0 and self.applier.pending() == 0

    def _train(self) -> None:
        trainer = self.engine.trainer
        new, self.applier.new_samples = self.applier.new_samples, 0
        if trainer.training:
            return  # the running cycle takes the new samples in its next epochs
        try:
            if trainer.start():
                log.info("fleet: %d new sample(s) from the group: training", new)
        except NoSamplesError:
            pass

    def trim(self) -> None:
        """Forget what is beyond the ledger's limits (oldest first)."""
        ledger = self.ledger
        gone = ledger.to_forget(self.config.max_tombstones, self.config.max_samples)
        if not gone:
            return

        def write(db: StateDatabase) -> None:
            with db.transaction():
                db.fleet.forget(gone)

        self.engine.store.write("trimming the fleet's records", write)
        ledger.forget(gone)

    # --- status -------------------------------------------------------------------------------

    def _refresh_status(self) -> None:
        ledger, left_out = self.ledger, self.applier.left_out
        self._snapshot = {
            "group": self.config.group,
            "mode": self.config.mode,
            "board": self.config.board,
            "samples": len(ledger.id_of),
            "from_others": ledger.from_others,
            "boards": sorted(self._boards - {self.config.board}),
            "joined": self._joined,
            "shared": self.sharing.counts(),
            "left_out": {
                "limit": left_out.count("limit"),
                "no_slot": left_out.count("no_slot"),
                "refused": left_out.count("refused"),
                "last": left_out.last,
            },
        }

    def _announce(self) -> None:
        self._refresh_status()
        self.engine.status.publish()

    def status(self) -> dict[str, Any]:
        """The fleet's part of the status (any thread: the counters are read as they are,
        the rest is the command thread's last snapshot)."""
        return {
            **self._snapshot,
            "samples": len(self.ledger.id_of),
            "from_others": self.ledger.from_others,
            "last_heard": self.inbox.last_heard,
            "waiting": len(self.inbox),
        }
