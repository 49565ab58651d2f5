"""Choosing gpiozero's pin factory and turning pin errors into messages a maker can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import PersonalizerError

T = TypeVar("T")

FACTORIES = ("auto", "lgpio", "rpigpio", "mock")

FIX_HINT = (
    "On a Raspberry Pi: add the service user to group gpio (sudo usermod -a -G gpio personalizer) "
    'and check the pin number (BCM numbering, e.g. 17 or "GPIO17"; "BOARD11" for the '
    'header position). Pi 5 needs pin_factory = "lgpio" (python3-lgpio). Off a Pi, set '
    '[gpio] pin_factory = "mock" or enabled = false'
)


class GpioError(PersonalizerError):
    """A GPIO pin or pin library cannot be used; the message names the pin and the fix."""


def open_pin_factory(name: str) -> Any:
    """The gpiozero pin factory called ``name``; None for ``auto`` (gpiozero's own choice).

    ``mock`` gives PWM-capable mock pins (gpiozero's ``MockFactory``): for tests, the simulator
    and boards without buttons wired.
    """
    try:
        if name == "auto":
            return None
        if name == "mock":
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            return MockFactory(pin_class=MockPWMPin)
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
    except Exception as exc:  # ImportError, or the library failing to reach the GPIO chip
        raise GpioError(
            f"[gpio] pin_factory = {name!r} cannot be used: {exc}. {FIX_HINT}"
        ) from None
    raise GpioError(f"[gpio] pin_factory = {name!r} is not one of {', '.join(FACTORIES)}")


def open_device(role: str, pin: int | str, make: Callable[[], T]) -> T:
    """Build one gpiozero device; any failure becomes a GpioError naming ``role`` and ``pin``."""
    try:
        return make()
    except Exception as exc:  # gpiozero raises many types (BadPinFactory, PinInvalidPin, OSError)
        raise GpioError(
            f"cannot open GPIO pin {pin!r} for the {role}: {type(exc).__name__}: {exc}. {FIX_HINT}"
        ) from None
