"""GPIO: class, train and reset buttons, and LEDs, through gpiozero's pin factories."""

from .lights import Lights
from .panel import ButtonPanel
from .pins import GpioError, open_pin_factory

__all__ = ["ButtonPanel", "GpioError", "Lights", "open_pin_factory"]
