"""What the daemon tells the outside world, independent of how it is told (MQTT, LEDs, ...).

The service reports through an :class:`EventSink`. The MQTT client is one sink; status LEDs or a
display are others: :class:`EventFanout` hands each event to all of them, and a failing sink
never stops the others or the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraStatus:
    """The camera's health as the status topic reports it."""

    source: str
    ok: bool
    error: str | None = None
    starting: bool = False  # opened for the first time, no frame yet (not a failure)


@dataclass(frozen=True)
class StatusReport:
    """The daemon's state: `<root>/status` (retained)."""

    state: str  # "idle" | "training"
    classes: tuple[str, ...]
    samples: Mapping[str, int]
    bundle: str
    version: str
    camera: CameraStatus
    warnings: tuple[str, ...] = ()
    capacity: int = 0  # class slots of the bundle; `classes` are the active ones
    class_slots: Mapping[int, str] = field(default_factory=dict)  # slot -> name (not published)
    progress: str | None = None  # a long job under way (embedding the samples again)
    last_loss: float | None = None  # the last finished epoch's loss (retained for Home Assistant)
    needs_training: bool = False  # the samples changed since the head was trained
    last_cycle: Mapping[str, object] | None = None  # how the last training cycle ended
    region: Sequence[float] | None = None  # [x, y, w, h] of the frame the model sees (None: all)
    variety: Mapping[str, Mapping[str, object]] = field(default_factory=dict)  # per class
    review_pending: int = 0  # frames kept for review, waiting for a label
    fleet: Mapping[str, object] | None = None  # the fleet group's part (None: in no group)


@dataclass(frozen=True)
class PredictionEvent:
    """A smoothed prediction for one frame: `<root>/prediction`."""

    class_name: str
    confidence: float
    scores: Mapping[str, float]
    ts: float  # when the frame was captured (Unix seconds)
    frame: int
    known: bool = True  # False: none of the taught classes (class_name is the unknown label)
    closest: str | None = None  # the class this frame was nearest to (shown with "unknown")
    changed: bool = False  # the announced class changed with this frame (or was the first one)
    previous: str | None = None  # with a change: the class announced before (None: none yet)
    # With a change: the square of the frame the model saw (uint8 RGB, read-only), for a picture.
    view: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LossEvent:
    """One finished training epoch: `<root>/loss`."""

    loss: float
    epoch: int
    samples: int
    ts: float


@dataclass(frozen=True)
class SampleEvent:
    """A sample was stored (and is on disk): `<root>/sample`."""

    class_name: str
    count: int
    source: str  # "button" | "mqtt" | "web" | "review" | "fleet"
    ts: float
    similar_to: int | None = None  # an earlier sample of the class this one nearly repeats
    hint: str | None = None  # what to do about it, in words
    # The square of the image the model saw (uint8 RGB, read-only; None for tensor bundles).
    view: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MetricsReport:
    """A validation estimate from the board's own samples: `<root>/metrics` (retained)."""

    accuracy: float | None  # None: too few samples to estimate
    recall: Mapping[str, float | None]  # per class
    confusion: Mapping[str, Mapping[str, int]]  # true class -> predicted class (or unknown) -> n
    unknown_rate: float | None  # share of held-out samples of taught classes called unknown
    samples: int
    method: str  # how it was estimated, e.g. "5-fold cross-validation"
    seconds: float  # what it cost
    ts: float
    stale: bool = False  # the samples or classes changed since: to be estimated again


class EventSink(Protocol):
    """Something that wants to hear what the daemon does."""

    def status(self, report: StatusReport) -> None:
        """The status changed (or is being re-announced)."""
        ...

    def prediction(self, event: PredictionEvent) -> None:
        """A prediction worth publishing."""
        ...

    def loss(self, event: LossEvent) -> None:
        """A training epoch finished."""
        ...

    def sample(self, event: SampleEvent) -> None:
        """A sample was stored."""
        ...

    def metrics(self, report: MetricsReport) -> None:
        """A new validation estimate."""
        ...


@dataclass
class EventFanout:
    """Hands every event to each sink; one sink's failure is logged and does not spread."""

    sinks: list[EventSink] = field(default_factory=list)

    def add(self, sink: EventSink) -> None:
        """Add a sink (LEDs, a display, ...)."""
        self.sinks.append(sink)

    def _each(self, method: str, event: object, sinks: Iterable[EventSink]) -> None:
        for sink in sinks:
            try:
                getattr(sink, method)(event)
            except Exception:  # a broken sink must never stop the frame loop or the trainer
                log.exception("event sink %r failed on %s", sink, method)

    def status(self, report: StatusReport) -> None:
        """Forward to every sink."""
        self._each("status", report, list(self.sinks))

    def prediction(self, event: PredictionEvent) -> None:
        """Forward to every sink."""
        self._each("prediction", event, list(self.sinks))

    def loss(self, event: LossEvent) -> None:
        """Forward to every sink."""
        self._each("loss", event, list(self.sinks))

    def sample(self, event: SampleEvent) -> None:
        """Forward to every sink."""
        self._each("sample", event, list(self.sinks))

    def metrics(self, report: MetricsReport) -> None:
        """Forward to every sink."""
        self._each("metrics", report, list(self.sinks))
