"""Buttons: one per class (take a sample), train (start/pause), reset (hold to clear everything).

A press becomes the same command an MQTT client would send, with ``source="button"``, handed to
the service's ``submit``: both take exactly the same code path. gpiozero calls the handlers from
its own pin threads; they only build a command and enqueue it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..commands import Command
from ..config import GpioConfig
from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport
from .pins import open_device

log = logging.getLogger(__name__)

Submit = Callable[[Command], Any]


class _Debounce:
    """Accept a press only if the previous accepted press of that button is ``window`` old.

    gpiozero's ``bounce_time`` is handed to the pin library too, but not every pin factory
    filters bounce (the mock one does not), so the panel enforces it itself.
    """

    def __init__(self, window: float) -> None:
        self._window = window
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def accept(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e9) < self._window:
                return False
            self._last[key] = now
            return True


class ButtonPanel:
    """The wired buttons, each turned into a command for ``submit``.

    It is also an event sink: it follows the status to know whether the train button starts or
    pauses training.
    """

    def __init__(
        self,
        config: GpioConfig,
        pin_factory: Any,
        submit: Submit,
        on_reset_held: Callable[[], None] | None = None,
    ) -> None:
        from gpiozero import Button

        self._submit = submit
        self._on_reset_held = on_reset_held
        self._training = False
        self._debounce = _Debounce(config.bounce_time)
        self._buttons: list[Any] = []

        def button(role: str, pin: int | str, hold_time: float | None = None) -> Any:
            kwargs = {"pull_up": config.pull_up, "bounce_time": config.bounce_time}
            if hold_time is not None:
                kwargs["hold_time"] = hold_time
            made = open_device(role, pin, lambda: Button(pin, pin_factory=pin_factory, **kwargs))
            self._buttons.append(made)
            return made

        for entry in config.class_buttons:
            made = button(f"button of class {entry.class_name!r}", entry.pin)
            made.when_pressed = self._sample_handler(entry.class_name)
        if config.train_button is not None:
            button("train button", config.train_button).when_pressed = self._train_pressed
        if config.reset_button is not None:
            reset = button("reset button", config.reset_button, hold_time=config.hold_time)
            reset.when_pressed = self._reset_pressed
            reset.when_held = self._reset_held
        self._hold_time = config.hold_time

    def _sample_handler(self, class_name: str) -> Callable[[], None]:
        def pressed() -> None:
            if self._debounce.accept(f"class:{class_name}"):
                log.info("button: sample of class %s", class_name)
                self._submit(Command.local("sample", {"class": class_name}, "button"))

        return pressed

    def _train_pressed(self) -> None:
        if not self._debounce.accept("train"):
            return
        action = "stop" if self._training else "start"
        log.info("train button: %s training", action)
        self._submit(Command.local("train", {"action": action}, "button"))

    def _reset_pressed(self) -> None:
        # A short press does nothing harmful: it only says how to clear.
        log.info(
            "reset button pressed: hold it %.0f s to clear all samples and training",
            self._hold_time,
        )

    def _reset_held(self) -> None:
        if not self._debounce.accept("reset"):
            return
        log.warning("reset button held: clearing every sample and parameter")
        self._submit(Command.local("reset", {"all": True}, "button"))
        if self._on_reset_held is not None:
            self._on_reset_held()

    # -- event sink: follow the training state ----------------------------------------------
    def status(self, report: StatusReport) -> None:
        """Remember whether training runs (the train button toggles it)."""
        self._training = report.state == "training"

    def prediction(self, event: PredictionEvent) -> None:
        """Not needed by the buttons."""

    def loss(self, event: LossEvent) -> None:
        """Not needed by the buttons."""

    def sample(self, event: SampleEvent) -> None:
        """Not needed by the buttons."""

    def metrics(self, report: MetricsReport) -> None:
        """Not shown here."""

    def close(self) -> None:
        """Release the pins."""
        for made in self._buttons:
            made.close()
        self._buttons.clear()
