"""The newest frame, shared between the camera reader and its consumers.

Only the newest frame is kept: a slow consumer skips frames instead of building a backlog.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera frame: RGB pixels, its number since start, and when it was captured."""

    image: np.ndarray = field(repr=False)
    number: int
    captured: float  # wall clock (Unix seconds), what the MQTT payloads report
    captured_monotonic: float  # for ages and latencies, immune to clock changes


class LatestFrame:
    """Holds the newest frame; consumers wait for one newer than the last they saw."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._frame: Frame | None = None
        self._count = 0

    def put(self, image: np.ndarray) -> Frame:
        """Store `image` as the newest frame (the previous one is dropped) and wake waiters."""
        image.flags.writeable = False  # consumers share it; nobody may change it in place
        with self._condition:
            self._count += 1
            self._frame = Frame(image, self._count, time.time(), time.monotonic())
            self._condition.notify_all()
            return self._frame

    def latest(self) -> Frame | None:
        """The newest frame, or None before the first one."""
        with self._condition:
            return self._frame

    def wait_newer(self, than: int, timeout: float) -> Frame | None:
        """The newest frame whose number is above `than`, waiting up to `timeout` seconds."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._frame is not None and self._frame.number > than, timeout
            )
            frame = self._frame
            return frame if frame is not None and frame.number > than else None
