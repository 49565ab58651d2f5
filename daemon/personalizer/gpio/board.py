"""The wired board: pin factory, buttons and LEDs, opened together and closed together."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..config import GpioConfig
from .lights import Lights
from .panel import ButtonPanel, Submit
from .pins import GpioError, open_pin_factory

log = logging.getLogger(__name__)


class GpioBoard:
    """Buttons and LEDs of one configuration.

    Args:
      config: the ``[gpio]`` section.
      classes: the model's classes; every class button and LED must name one.
      submit: hands a command to the service (the same path as MQTT commands).
      pin_factory: a gpiozero pin factory to use instead of the configured one (the simulator
        shares its mock factory this way).
    """

    def __init__(
        self,
        config: GpioConfig,
        classes: Sequence[str],
        submit: Submit,
        pin_factory: Any = None,
    ) -> None:
        for key, entries in (("class_buttons", config.class_buttons),
                             ("class_leds", config.class_leds)):  # fmt: skip
            for entry in entries:
                if entry.class_name not in classes:
                    raise GpioError(
                        f"[gpio] {key}: class {entry.class_name!r} is not one of the model's "
                        f"classes ({', '.join(classes)}); fix the class name in the config"
                    )
        self.config = config
        self.factory = (
            pin_factory if pin_factory is not None else open_pin_factory(config.pin_factory)
        )
        self.lights = Lights(config, self.factory)
        try:
            self.panel = ButtonPanel(
                config, self.factory, submit, on_reset_held=lambda: self.lights.flash(3)
            )
        except GpioError:
            self.lights.close()
            raise
        log.info(
            "GPIO: %d class button(s), train button %s, reset button %s, %d class LED(s), "
            "status LED %s (pin factory %s)",
            len(config.class_buttons),
            config.train_button,
            config.reset_button,
            len(config.class_leds),
            config.status_led,
            type(self.factory).__name__ if self.factory is not None else "auto",
        )

    @property
    def sinks(self) -> list[Any]:
        """The event sinks to register with the service (buttons follow status, LEDs show it)."""
        return [self.panel, self.lights]

    def close(self) -> None:
        """Release every pin."""
        self.panel.close()
        self.lights.close()
