"""LEDs: one per class (lit for the predicted class) and a status LED.

The status LED blinks once for each captured sample, pulses while training, blinks fast while
something is wrong (camera down, a warning in the status) and flashes three times when the reset
button cleared everything. It is an event sink: it only reacts to what the service reports.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import GpioConfig
from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport
from .pins import open_device

SAMPLE_BLINK_S = 0.15
ERROR_BLINK_S = 0.1
PULSE_S = 1.0


class Lights:
    """Class LEDs and the status LED, driven by the service's events."""

    def __init__(self, config: GpioConfig, pin_factory: Any) -> None:
        from gpiozero import LED, PWMLED

        self._lock = threading.Lock()
        self.class_leds: dict[str, Any] = {}
        for entry in config.class_leds:
            self.class_leds[entry.class_name] = open_device(
                f"LED of class {entry.class_name!r}",
                entry.pin,
                lambda pin=entry.pin: LED(pin, pin_factory=pin_factory),
            )
        self.status_led = None
        if config.status_led is not None:
            self.status_led = open_device(
                "status LED",
                config.status_led,
                lambda: PWMLED(config.status_led, pin_factory=pin_factory),
            )
        self._training = False
        self._faulty = False
        self._lit: str | None = None

    # -- the status LED's resting pattern, re-applied after each transient blink --------------
    def _rest(self) -> None:
        led = self.status_led
        if led is None:
            return
        if self._faulty:
            led.blink(on_time=ERROR_BLINK_S, off_time=ERROR_BLINK_S)
        elif self._training:
            led.pulse(fade_in_time=PULSE_S, fade_out_time=PULSE_S)
        else:
            led.off()

    @property
    def status_pattern(self) -> str:
        """``error``, ``training`` or ``idle``: what the status LED shows at rest."""
        return "error" if self._faulty else ("training" if self._training else "idle")

    def flash(self, times: int) -> None:
        """Blink the status LED ``times`` times, then return to the resting pattern."""
        led = self.status_led
        if led is None:
            return
        with self._lock:
            led.blink(on_time=SAMPLE_BLINK_S, off_time=SAMPLE_BLINK_S, n=times, background=False)
            self._rest()

    # -- event sink ----------------------------------------------------------------------------
    def status(self, report: StatusReport) -> None:
        """Training pulses; a camera failure or a warning blinks fast."""
        faulty = (not report.camera.ok) or bool(report.warnings)
        training = report.state == "training"
        if (faulty, training) != (self._faulty, self._training):
            self._faulty, self._training = faulty, training
            with self._lock:
                self._rest()

    def prediction(self, event: PredictionEvent) -> None:
        """Light the predicted class's LED, and only that one."""
        if event.class_name == self._lit:
            return
        self._lit = event.class_name
        for name, led in self.class_leds.items():
            if name == event.class_name:
                led.on()
            else:
                led.off()

    def loss(self, event: LossEvent) -> None:
        """Training progress is shown by the pulse already."""

    def sample(self, event: SampleEvent) -> None:
        """One blink per captured sample (in the background: never delays the caller)."""
        threading.Thread(target=self.flash, args=(1,), name="led-blink", daemon=True).start()

    def metrics(self, report: MetricsReport) -> None:
        """Not shown here."""

    def close(self) -> None:
        """Switch everything off and release the pins."""
        for led in [*self.class_leds.values(), self.status_led]:
            if led is not None:
                led.close()
