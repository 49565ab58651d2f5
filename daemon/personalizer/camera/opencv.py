"""USB (V4L2) cameras and the Coral Dev Board camera through OpenCV, imported lazily."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .source import CameraError

INSTALL_HINT = "install OpenCV: pip install opencv-python-headless (or apt install python3-opencv)"


class OpenCVSource:
    """A camera that OpenCV's VideoCapture can open: `/dev/videoN` or an index."""

    def __init__(self, device: str, width: int, height: int, fps: float) -> None:
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self._capture: Any = None

    def describe(self) -> str:
        """E.g. `opencv /dev/video0`."""
        return f"opencv {self.device}"

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
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep latency low: no queue of old frames
        self._capture = capture

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
