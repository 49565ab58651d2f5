"""The one small interface every camera implements, and its error."""

from __future__ import annotations

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
