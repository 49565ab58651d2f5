"""The status board: everything `<root>/status` says, gathered from the parts, and sent.

The camera's health, lasting warnings, a long job's progress and the last training loss are
recorded here as they happen (from the camera, command and trainer threads); the rest (classes,
samples, whether training is on or needed, the state file's errors) is read from the model, the
trainer and the store when a report is built. :meth:`StatusBoard.publish` builds the report and
sends it holding ``_send_lock``, so two threads never send an older report after a newer one.
While epochs finish, the report is sent again with the new loss at most every
:attr:`StatusBoard.loss_interval` seconds: the retained status is what Home Assistant's loss
sensor reads, so it follows training and still has the last loss after Home Assistant restarts.

Lock order: ``_send_lock`` (publishing), then the model's and store's own locks (reading them),
then ``_lock`` (the recorded fields; held only to read or replace them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..events import CameraStatus, EventSink, StatusReport
from ..model import TransferLearningModel
from ..model.pooled import variety_word
from ..store import StateStore
from ..trainer.trainer import CycleEnd

RETRAIN = "the samples changed since the head was trained: train again"
NO_IMAGES = "state.store_images is false: no crops are kept, so a new bundle needs new samples"


@dataclass(frozen=True)
class StatusSources:
    """Where the parts of a status report come from."""

    model: TransferLearningModel
    store: StateStore
    training: Callable[[], bool]  # whether training is switched on
    last_cycle: Callable[[], CycleEnd | None]  # how the last training cycle ended
    region: Callable[[], list[float] | None]  # the region of the frame the model looks at
    review_pending: Callable[[], int]  # frames kept for review, waiting for a label
    bundle_id: str
    version: str


class StatusBoard:
    """Records what happened and announces the daemon's status."""

    loss_interval = 1.0  # seconds: the status follows the epochs' loss at most this often

    def __init__(self, sources: StatusSources, events: EventSink, camera_source: str) -> None:
        """Reports about ``sources`` to ``events``; the camera starts as "starting"."""
        self._sources = sources
        self._events = events
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._camera = CameraStatus(camera_source, ok=False, starting=True)
        self._warnings: tuple[str, ...] = ()
        self._progress: str | None = None
        self._last_loss: float | None = None
        self._sent_at: float | None = None  # time.monotonic() of the last report sent
        # The fleet's part of the report (fleet/fleet.py), from any thread; None: no group.
        self.fleet: Callable[[], dict[str, object]] | None = None

    @property
    def camera(self) -> CameraStatus:
        """The camera's health as last recorded."""
        return self._camera

    @property
    def last_loss(self) -> float | None:
        """The last finished epoch's loss (None: none since the last reset)."""
        return self._last_loss

    def report(self) -> StatusReport:
        """The current status."""
        src = self._sources
        model, store = src.model, src.store
        with self._lock:
            warnings = list(self._warnings)
            camera, progress, loss = self._camera, self._progress, self._last_loss
        if model.needs_training:
            warnings.append(RETRAIN)
        if not store.store_images:
            warnings.append(NO_IMAGES)
        # A failed write is a warning only until a write works again.
        warnings += [e for e in (store.error, store.write_error) if e]
        slots = model.class_slots()
        counts = model.samples()
        return StatusReport(
            state="training" if src.training() else "idle",
            classes=tuple(slots.values()),
            samples={name: counts.get(name, 0) for name in slots.values()},
            bundle=src.bundle_id,
            version=src.version,
            camera=camera,
            warnings=tuple(warnings),
            capacity=model.capacity,
            last_loss=loss,
            class_slots=slots,
            progress=progress,
            needs_training=model.needs_training,
            last_cycle=_cycle(src.last_cycle()),
            region=src.region(),
            review_pending=src.review_pending(),
            variety={
                name: {"value": None if v is None else round(v, 3), "say": variety_word(v)}
                for name, v in model.variety().items()
            },
            fleet=self.fleet() if self.fleet is not None else None,
        )

    def publish(self) -> None:
        """Announce the current status (built and sent in one step, so none goes stale)."""
        with self._send_lock:
            report = self.report()
            with self._lock:
                self._sent_at = time.monotonic()
            self._events.status(report)

    def warn(self, message: str) -> None:
        """Add a lasting warning (e.g. a state file that was set aside) and announce it."""
        with self._lock:
            self._warnings = (*self._warnings, message)
        self.publish()

    def progress(self, text: str | None) -> None:
        """Show (or, with None, end) a long job's progress, and announce it."""
        with self._lock:
            self._progress = text
        self.publish()

    def camera_changed(self, status: CameraStatus) -> None:
        """Record the camera's health; announced when it changed."""
        with self._lock:
            changed = status != self._camera
            self._camera = status
        if changed:
            self.publish()

    def loss(self, value: float | None) -> None:
        """Record the last epoch's loss (None after a reset); announced when no report went out
        for :attr:`loss_interval` seconds (the report that ends training carries the last one)."""
        with self._lock:
            self._last_loss = value
            sent = self._sent_at
        if value is not None and (sent is None or time.monotonic() - sent >= self.loss_interval):
            self.publish()


def _cycle(end: CycleEnd | None) -> dict[str, object] | None:
    if end is None:
        return None
    loss = None if end.loss is None or end.loss != end.loss else round(end.loss, 6)
    return {
        "reason": end.reason,
        "text": end.text,
        "epochs": end.epochs,
        "loss": loss,
        "ts": end.ts,
    }
