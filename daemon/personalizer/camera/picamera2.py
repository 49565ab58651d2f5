"""The Raspberry Pi camera through picamera2 (libcamera), imported lazily.

picamera2 only exists on Raspberry Pi OS (apt's python3-picamera2; a venv needs
`--system-site-packages` to see it), so it is imported when the source opens, never at import
time. The main stream is in the "BGR888" format, which picamera2 delivers in R, G, B byte order.

Its size: unless the config sets one, exactly the model's input, square. The Pi's ISP then does
what the CPU would otherwise do for every frame: libcamera crops the sensor's field of view to
the stream's aspect ratio (a centre square, as the model's preprocessing would) and the ISP
scales it in hardware, so each frame arrives as the model's input and preprocessing is only
the conversion to floats. With a size configured (a larger live view), frames are that size
and the CPU crops and resizes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .source import CameraError


class Picamera2Source:
    """A Raspberry Pi camera module (CSI)."""

    def __init__(
        self,
        fps: float,
        camera_num: int = 0,
        size: tuple[int, int] | None = None,
        model_side: int | None = None,
    ) -> None:
        """``size``: (width, height) of the stream; None: the model's square input (or 640x480
        without a model size)."""
        if size is None:
            size = (model_side, model_side) if model_side else (640, 480)
        self.width, self.height = size
        self.fps = fps
        self.camera_num = camera_num
        self._camera: Any = None

    def describe(self) -> str:
        """E.g. `picamera2 camera 0 224x224`."""
        return f"picamera2 camera {self.camera_num} {self.width}x{self.height}"

    def open(self) -> None:
        """Configure a video stream at the configured size and start it."""
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(
                "picamera2 is not available: it ships with Raspberry Pi OS "
                "(sudo apt install python3-picamera2; create the venv with "
                '--system-site-packages), or choose camera.source = "opencv"'
            ) from None
        camera = None
        try:
            camera = Picamera2(self.camera_num)
            configuration = camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": "BGR888"},
                controls={"FrameRate": float(self.fps)},
                buffer_count=2,
            )
            camera.configure(configuration)
            camera.start()
        except Exception as exc:  # libcamera raises many kinds (IndexError: no camera, ...)
            if camera is not None:
                _quietly_close(camera)
            raise CameraError(
                f"cannot start the Raspberry Pi camera {self.camera_num}: {exc!r}; check the "
                "ribbon cable and `rpicam-hello --list-cameras`"
            ) from None
        self._camera = camera

    def read(self) -> np.ndarray:
        """The next frame of the main stream (RGB)."""
        if self._camera is None:
            raise CameraError("picamera2 camera is not open")
        try:
            frame = self._camera.capture_array("main")
        except Exception as exc:  # the camera went away mid-stream
            raise CameraError(
                f"the Raspberry Pi camera stopped delivering frames: {exc!r}"
            ) from None
        return np.ascontiguousarray(frame[..., :3])

    def close(self) -> None:
        """Stop the stream and release the camera."""
        if self._camera is not None:
            _quietly_close(self._camera)
            self._camera = None


def _quietly_close(camera: Any) -> None:
    for method in ("stop", "close"):
        try:
            getattr(camera, method)()
        except Exception:  # noqa: BLE001 - closing a broken camera must not raise
            pass
