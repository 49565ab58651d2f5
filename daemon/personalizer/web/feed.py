"""The page's live data: an :class:`~personalizer.events.EventSink` that pushes to open pages.

The service hands it every event, like the MQTT client; it keeps the newest status, prediction
and metrics and the recent losses (a page that connects gets those first; they are dropped when
every sample is), and forwards each
event to the pages connected to the event stream (server-sent events). Events arrive from the
daemon's threads; pages are served by the web server's event loop, so events cross over with
``loop.call_soon_threadsafe``. With no page connected an event costs a lock and an assignment.

Predictions and losses can come many times a second (a fast frame loop, short epochs); they
are sent together at most every :data:`PUSH_INTERVAL`: the newest prediction, and the losses
since the last push as one ``loss`` event carrying a list. Payloads are the MQTT API's own
(:mod:`personalizer.mqtt.payloads`), so the page and MQTT subscribers read the same fields.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport
from ..mqtt import payloads

log = logging.getLogger(__name__)

PUSH_INTERVAL = 0.25  # seconds between two pushes of predictions and losses to the pages
LOSS_HISTORY = 500  # losses a page gets when it connects (the chart's history)
QUEUE_SIZE = 256  # events waiting for one page; a page that falls behind is disconnected

Item = tuple[str, str]  # (event name, JSON text)


def _text(payload: bytes) -> str:
    return payload.decode("utf-8")


class Subscriber:
    """One connected page: its queue of events, and whether it fell behind."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def put(self, item: Item) -> None:
        """Queue ``item``; a full queue marks the page as fallen behind (it reconnects)."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream sees it and closes; the page reconnects


class LiveFeed:
    """Events for the web page: the newest of each kind, and a push to every open page."""

    def __init__(self, push_interval: float = PUSH_INTERVAL) -> None:
        self.push_interval = push_interval
        self._lock = threading.Lock()
        self._status: StatusReport | None = None
        self._prediction: PredictionEvent | None = None
        self._metrics: MetricsReport | None = None
        self._losses: deque[LossEvent] = deque(maxlen=LOSS_HISTORY)
        # Waiting for the next push (guarded by the lock):
        self._new_prediction = False
        self._new_losses: list[LossEvent] = []
        self._push_due = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscriber] = set()

    # --- the server's side (event-loop thread) ----------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Push to pages served by ``loop`` (None: the server stopped)."""
        self._loop = loop
        if loop is None:
            self._subscribers.clear()
            with self._lock:
                self._push_due = False
                self._new_prediction = False
                self._new_losses = []

    def subscribe(self) -> Subscriber:
        """A new page: it gets the snapshot first, then every event."""
        subscriber = Subscriber()
        for item in self.snapshot():
            subscriber.put(item)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """The page went away."""
        self._subscribers.discard(subscriber)

    @property
    def pages(self) -> int:
        """Pages connected to the event stream."""
        return len(self._subscribers)

    def snapshot(self) -> list[Item]:
        """What a page needs first: status, the recent losses, prediction, metrics."""
        with self._lock:
            status, prediction, metrics = self._status, self._prediction, self._metrics
            losses = list(self._losses)
        items: list[Item] = []
        if status is not None:
            items.append(("status", _text(payloads.status_payload(status))))
        items.append(("losses", _losses_text(losses)))
        if prediction is not None:
            items.append(("prediction", _text(payloads.prediction_payload(prediction))))
        if metrics is not None:
            items.append(("metrics", _text(payloads.metrics_payload(metrics))))
        return items

    def latest_status(self) -> StatusReport | None:
        """The newest status report, if any came yet."""
        with self._lock:
            return self._status

    def _broadcast(self, name: str, text: str) -> None:
        for subscriber in list(self._subscribers):
            subscriber.put((name, text))

    def _push(self, name: str, render: Callable[[], bytes]) -> None:
        """Send one event to every page (in the loop thread)."""
        if self._subscribers:
            self._broadcast(name, _text(render()))

    def _push_frequent(self) -> None:
        """Send the new losses and the newest prediction (in the loop thread)."""
        with self._lock:
            self._push_due = False
            prediction = self._prediction if self._new_prediction else None
            losses, self._new_losses = self._new_losses, []
            self._new_prediction = False
        if not self._subscribers:
            return
        if losses:
            self._broadcast("loss", _losses_text(losses))
        if prediction is not None:
            self._broadcast("prediction", _text(payloads.prediction_payload(prediction)))

    # --- the daemon's side (any thread): EventSink ------------------------------------------

    def _call(self, callback: Callable[..., Any], *args: Any) -> bool:
        loop = self._loop
        if loop is None or not self._subscribers:
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:  # the loop closed meanwhile: nobody to tell
            return False

    def _schedule_push(self) -> None:
        """Push within `push_interval` (called with the lock held)."""
        if self._push_due or not self._subscribers or self._loop is None:
            return
        loop = self._loop
        self._push_due = self._call(loop.call_later, self.push_interval, self._push_frequent)

    def status(self, report: StatusReport) -> None:
        """Keep and forward the status. With no sample left the losses are dropped: they
        were of a head that is gone, and a page that connects now must not chart them."""
        with self._lock:
            self._status = report
            if not any(report.samples.values()):
                self._losses.clear()
                self._new_losses = []
        self._call(self._push, "status", lambda: payloads.status_payload(report))

    def prediction(self, event: PredictionEvent) -> None:
        """Keep the prediction; the newest goes to the pages at the next push."""
        with self._lock:
            self._prediction = event
            self._new_prediction = True
            self._schedule_push()

    def loss(self, event: LossEvent) -> None:
        """Keep the loss for the chart; it goes to the pages at the next push."""
        with self._lock:
            self._losses.append(event)
            if self._subscribers:
                self._new_losses.append(event)
            self._schedule_push()

    def sample(self, event: SampleEvent) -> None:
        """Forward the sample event."""
        self._call(self._push, "sample", lambda: payloads.sample_payload(event))

    def metrics(self, report: MetricsReport) -> None:
        """Keep and forward the metrics."""
        with self._lock:
            self._metrics = report
        self._call(self._push, "metrics", lambda: payloads.metrics_payload(report))


def _losses_text(losses: list[LossEvent]) -> str:
    return "[" + ",".join(_text(payloads.loss_payload(event)) for event in losses) + "]"
