"""Keyboard keys stand in for the buttons (``personalizer run --simulate``).

For a laptop, or a board without buttons wired. The buttons and LEDs run on gpiozero's mock pins
and keys press them, so everything after the pin (debounce, commands, LEDs) is the real code:

    1..9   press the button of class 1..9 (the order of [model] classes)
    t      press the train button (start / pause training)
    r      press the reset button briefly (does nothing harmful)
    R      hold the reset button (clears every sample and parameter)
    q      stop the daemon

LED changes are printed as one line, e.g. ``LEDs: [cup] ( pen ) ( mug ) | status: training``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..config import GpioConfig, PinAssignment, pin_key
from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport

log = logging.getLogger(__name__)

PRESS_S = 0.08


def simulated_config(config: GpioConfig, classes: Sequence[str]) -> GpioConfig:
    """The GPIO config on mock pins: the configured pins kept, missing buttons and LEDs added.

    gpiozero's mock factory models a real Pi header, so added parts take free BCM pins (2-27);
    class LEDs are added only while pins remain.
    """
    used = {pin_key(p) for p in config.pins()}
    free = iter(p for p in range(2, 28) if pin_key(p) not in used)

    def take() -> int | None:
        return next(free, None)

    buttons = config.class_buttons or tuple(
        PinAssignment.model_validate({"class": c, "pin": pin})
        for c in classes
        if (pin := take()) is not None
    )
    train = config.train_button if config.train_button is not None else take()
    reset = config.reset_button if config.reset_button is not None else take()
    status = config.status_led if config.status_led is not None else take()
    leds = config.class_leds or tuple(
        PinAssignment.model_validate({"class": c, "pin": pin})
        for c in classes
        if (pin := take()) is not None
    )
    return config.model_copy(
        update={
            "enabled": True,
            "pin_factory": "mock",
            "class_buttons": buttons,
            "class_leds": leds,
            "train_button": train,
            "reset_button": reset,
            "status_led": status,
        }
    )


class KeyboardButtons:
    """Presses mock pins when keys arrive on ``stream``; shows the LEDs on ``out``."""

    def __init__(
        self,
        config: GpioConfig,
        factory: Any,
        lights: Any,
        on_quit: Callable[[], None],
        stream: IO[str] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.config = config
        self.factory = factory
        self.lights = lights
        self.on_quit = on_quit
        self.stream = stream if stream is not None else sys.stdin
        self.out = out if out is not None else sys.stderr
        self._shown = ""
        self._lock = threading.Lock()

    def help_text(self) -> str:
        """What each key does."""
        keys = ", ".join(
            f"{i + 1}={b.class_name}" for i, b in enumerate(self.config.class_buttons[:9])
        )
        return f"keys: {keys}, t=train, r=reset (press), R=reset (hold), q=quit"

    def press(self, pin: int | str, seconds: float = PRESS_S) -> None:
        """Press and release a (pulled-up) button pin."""
        mock = self.factory.pin(pin)
        if self.config.pull_up:
            mock.drive_low()
            time.sleep(seconds)
            mock.drive_high()
        else:
            mock.drive_high()
            time.sleep(seconds)
            mock.drive_low()

    def handle(self, key: str) -> bool:
        """Act on one key; False when it asks to quit."""
        buttons = self.config.class_buttons
        if key.isdigit() and 1 <= int(key) <= min(9, len(buttons)):
            self.press(buttons[int(key) - 1].pin)
        elif key == "t" and self.config.train_button is not None:
            self.press(self.config.train_button)
        elif key == "r" and self.config.reset_button is not None:
            self.press(self.config.reset_button)
        elif key == "R" and self.config.reset_button is not None:
            self.press(self.config.reset_button, self.config.hold_time + 0.3)
        elif key == "q":
            self.on_quit()
            return False
        return True

    def run(self, stop: threading.Event) -> None:
        """Read keys until end of input, ``q`` or ``stop``."""
        print(self.help_text(), file=self.out, flush=True)
        while not stop.is_set():
            line = self.stream.readline()
            if not line:
                return  # end of input: the buttons just stay unpressed
            for key in line.strip():
                if not self.handle(key):
                    return

    # -- event sink: print the LEDs when they change ------------------------------------------
    def _show(self) -> None:
        leds = " ".join(
            f"[{name}]" if led.is_lit else f"( {name} )"
            for name, led in self.lights.class_leds.items()
        )
        line = f"LEDs: {leds} | status: {self.lights.status_pattern}"
        with self._lock:
            if line != self._shown:
                self._shown = line
                print(line, file=self.out, flush=True)

    def status(self, report: StatusReport) -> None:
        """Show the LEDs."""
        self._show()

    def prediction(self, event: PredictionEvent) -> None:
        """Show the LEDs."""
        self._show()

    def loss(self, event: LossEvent) -> None:
        """Nothing to show."""

    def sample(self, event: SampleEvent) -> None:
        """Nothing to show (the status LED blinks)."""

    def metrics(self, report: MetricsReport) -> None:
        """Nothing to show."""
