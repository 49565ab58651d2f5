"""In-process doubles of the daemon's outputs, with verbs for tests (as gpiozero's MockPin).

:class:`RecordingSink` is an event sink (personalizer.events.EventSink) that keeps every event:
a test drives the engine directly and looks at what it said, in milliseconds, without a broker
or a subprocess. :class:`RecordingNotifier` does the same for the supervisor hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from personalizer.events import (
    LossEvent,
    MetricsReport,
    PredictionEvent,
    SampleEvent,
    StatusReport,
)


class RecordingSink:
    """Keeps every event it hears, in order, as (kind, event)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()

    def _record(self, kind: str, event: Any) -> None:
        with self._changed:
            self.events.append((kind, event))
            self._changed.notify_all()

    def status(self, report: StatusReport) -> None:
        """Record a status report."""
        self._record("status", report)

    def prediction(self, event: PredictionEvent) -> None:
        """Record a prediction."""
        self._record("prediction", event)

    def loss(self, event: LossEvent) -> None:
        """Record an epoch's loss."""
        self._record("loss", event)

    def sample(self, event: SampleEvent) -> None:
        """Record a sample event."""
        self._record("sample", event)

    def metrics(self, report: MetricsReport) -> None:
        """Record a metrics report."""
        self._record("metrics", report)

    def of(self, kind: str) -> list[Any]:
        """Every event of ``kind`` so far."""
        with self._changed:
            return [event for k, event in self.events if k == kind]

    def last(self, kind: str) -> Any:
        """The newest event of ``kind`` (AssertionError when there is none)."""
        found = self.of(kind)
        assert found, f"no {kind} event yet"
        return found[-1]

    def wait_for(
        self, kind: str, predicate: Callable[[Any], bool] = lambda e: True, timeout: float = 10.0
    ) -> Any:
        """The first event of ``kind`` (from now on or already there) that ``predicate`` likes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for k, event in self.events:
                    if k == kind and predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching {kind} event within {timeout} s")
                self._changed.wait(left)


class RecordingNotifier:
    """Records what the service tells its supervisor."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _record(self, what: str) -> None:
        with self.lock:
            self.calls.append(what)

    def ready(self) -> None:
        """Record it."""
        self._record("ready")

    def watchdog(self) -> None:
        """Record it."""
        self._record("watchdog")

    def status(self, text: str) -> None:
        """Record it."""
        self._record(f"status:{text}")

    def stopping(self) -> None:
        """Record it."""
        self._record("stopping")
