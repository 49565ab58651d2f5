"""Choosing the camera named by `[camera] source`, including `auto`."""

from __future__ import annotations

import logging

import numpy as np

from ..config import CameraConfig
from .opencv import OpenCVSource
from .picamera2 import Picamera2Source
from .replay import ReplaySource
from .source import CameraError, FrameSource
from .stream import StreamSource

log = logging.getLogger(__name__)


class AutoSource:
    """Tries picamera2, then OpenCV, then replay (when a path is set); uses the first that opens.

    Every (re)open probes again, so a camera plugged in later is found on the next attempt.
    """

    def __init__(self, candidates: list[FrameSource]) -> None:
        self.candidates = candidates
        self._active: FrameSource | None = None

    def describe(self) -> str:
        """The chosen camera, or the candidates before one was chosen."""
        if self._active is not None:
            return f"auto: {self._active.describe()}"
        return "auto (" + ", ".join(c.describe() for c in self.candidates) + ")"

    def open(self) -> None:
        """Open the first candidate that works; CameraError lists why each failed."""
        reasons = []
        for candidate in self.candidates:
            try:
                candidate.open()
            except CameraError as exc:
                reasons.append(f"{candidate.describe()}: {exc}")
                continue
            self._active = candidate
            log.info("camera source auto picked %s", candidate.describe())
            return
        raise CameraError("no camera could be opened; " + "; ".join(reasons))

    def read(self) -> np.ndarray:
        """A frame from the chosen camera."""
        if self._active is None:
            raise CameraError("no camera is open")
        return self._active.read()

    def close(self) -> None:
        """Close the chosen camera."""
        if self._active is not None:
            self._active.close()
            self._active = None


def create_frame_source(config: CameraConfig, model_side: int | None = None) -> FrameSource:
    """The FrameSource that `config` asks for (not opened yet).

    ``model_side`` is the model's (square) input size: unless the config sets width and height,
    cameras deliver the smallest frames that cover it (see the sources).
    """
    if config.source == "stream":
        if config.url is None:
            raise CameraError('camera.source = "stream" needs camera.url')
        return StreamSource(
            config.url,
            fps=config.fps,
            transport=config.rtsp_transport,
            username=config.username,
            password=config.password,
            password_source=config.password_source,
        )
    size = config.explicit_size
    replay = (
        ReplaySource(config.path, config.width, config.height, config.fps, size, model_side)
        if config.path is not None
        else None
    )
    if config.source == "replay":
        if replay is None:
            raise CameraError('camera.source = "replay" needs camera.path')
        return replay
    picamera = Picamera2Source(config.fps, size=size, model_side=model_side)
    opencv = OpenCVSource(config.device, config.fps, size=size, model_side=model_side)
    if config.source == "picamera2":
        return picamera
    if config.source == "opencv":
        return opencv
    candidates: list[FrameSource] = [picamera, opencv]
    if replay is not None:
        candidates.append(replay)
    return AutoSource(candidates)
