"""USB (V4L2) cameras and the Coral Dev Board camera through OpenCV, imported lazily.

Unless the config sets a frame size, the camera is asked for the smallest of its modes that
covers the model's input: V4L2 answers each request with the mode it can deliver, so the common
modes are tried from small to large and the first whose shorter side reaches the model's size
is kept. Small frames are cheap twice: less to transfer and decode, and the crop and resize to
the model's input then cost a fraction of the base model's invoke.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .source import CameraError

INSTALL_HINT = "install OpenCV: pip install opencv-python-headless (or apt install python3-opencv)"
# Modes USB cameras commonly have, smallest first.
COMMON_MODES = (
    (160, 120), (176, 144), (320, 240), (352, 288), (424, 240), (640, 360), (640, 480),
    (800, 600), (1280, 720), (1920, 1080),
)  # fmt: skip
DEFAULT_SIZE = (640, 480)


def covering_modes(model_side: int) -> list[tuple[int, int]]:
    """The common modes whose shorter side covers ``model_side``, smallest first."""
    return [m for m in COMMON_MODES if min(m) >= model_side] or [COMMON_MODES[-1]]


class OpenCVSource:
    """A camera that OpenCV's VideoCapture can open: `/dev/videoN` or an index."""

    def __init__(
        self,
        device: str,
        fps: float,
        size: tuple[int, int] | None = None,
        model_side: int | None = None,
    ) -> None:
        """``size``: (width, height) to ask for; None: the smallest mode covering
        ``model_side`` (or 640x480 without one)."""
        self.device = device
        self.size = size
        self.model_side = model_side
        self.fps = fps
        self.mode: tuple[int, int] | None = None  # what the camera delivers
        self._capture: Any = None

    def describe(self) -> str:
        """E.g. `opencv /dev/video0 320x240`."""
        mode = f" {self.mode[0]}x{self.mode[1]}" if self.mode else ""
        return f"opencv {self.device}{mode}"

    def open(self) -> None:
        """Open the device and ask for the configured size and rate."""
        try:
            import cv2
        except ImportError:
            raise CameraError(f"the opencv camera source needs OpenCV; {INSTALL_HINT}") from None
        device: int | str = int(self.device) if self.device.isdigit() else self.device
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        capture = cv2.VideoCapture(device, backend)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"cannot open camera {self.device}: is it plugged in, and is this user in the "
                "'video' group? (ls -l /dev/video*)"
            )
        self.mode = self._negotiate(capture, cv2)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep latency low: no queue of old frames
        self._capture = capture

    def _negotiate(self, capture: Any, cv2: Any) -> tuple[int, int]:
        """Ask for the configured size, or for the smallest mode that covers the model."""
        if self.size is not None or not self.model_side:
            wanted = [self.size or DEFAULT_SIZE]
        else:
            wanted = covering_modes(self.model_side)
        got = (0, 0)
        for width, height in wanted:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            got = (
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            )
            if self.size is not None or min(got) >= (self.model_side or 0):
                break
        return got

    def read(self) -> np.ndarray:
        """The next frame, converted from OpenCV's BGR to RGB."""
        if self._capture is None:
            raise CameraError("opencv camera is not open")
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise CameraError(f"camera {self.device} stopped delivering frames (unplugged?)")
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        return np.ascontiguousarray(frame[..., 2::-1])

    def close(self) -> None:
        """Release the device."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
