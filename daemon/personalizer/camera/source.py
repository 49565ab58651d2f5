"""The one small interface every camera implements, and its error."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import numpy as np

from ..errors import PersonalizerError


class CameraError(PersonalizerError):
    """The camera could not be opened or stopped delivering frames; the message says why."""


class FrameSource(Protocol):
    """A camera: open it, read RGB frames from it, close it.

    `read()` returns the next frame as an HxWx3 uint8 RGB array, blocking for about one frame
    period at most, and raises CameraError when the camera fails. `close()` releases the device;
    it may be called from another thread to make a pending `read()` give up early.
    """

    def open(self) -> None:
        """Open the device (or files); raises CameraError with the reason and the fix."""
        ...

    def read(self) -> np.ndarray:
        """The next frame, HxWx3 uint8 RGB."""
        ...

    def close(self) -> None:
        """Release the device; safe to call more than once."""
        ...

    def describe(self) -> str:
        """A short human description, e.g. `opencv /dev/video0`."""
        ...


class Pacer:
    """Waits until the next frame is due (at most ``fps`` a second); interruptible by ``stop``,
    which raises CameraError(``closed``)."""

    def __init__(self, fps: float, stop: threading.Event, closed: str = "camera closed") -> None:
        self.period = 1.0 / fps
        self.stop = stop
        self.closed = closed
        self.next_due: float | None = None

    def wait(self) -> None:
        """Return when the next frame is due."""
        now = time.monotonic()
        if self.next_due is None:
            self.next_due = now
        delay = self.next_due - now
        if delay > 0 and self.stop.wait(delay):
            raise CameraError(self.closed)
        # Never try to catch up on missed frames: the newest frame wins anyway.
        self.next_due = max(self.next_due + self.period, time.monotonic())
