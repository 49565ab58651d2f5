"""Replay: a folder of JPEG/PNG images (or a video file) played back as a camera, cycled.

For development, demos and tests. Frames are paced at the configured fps; images are decoded once
and scaled down (aspect kept) as a real camera would deliver them: to fit the configured width x
height, or, when the config sets no size, so that the shorter side is the model's input size
(the smallest frame that covers it, as the other cameras choose). Video files need OpenCV.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from .source import CameraError, Pacer

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _target(size: tuple[int, int], fit: tuple[int, int] | None, side: int | None):
    """The frame size of a ``size`` picture: within ``fit``, or shorter side ``side``."""
    width, height = size
    if fit is not None:
        scale = min(fit[0] / width, fit[1] / height, 1.0)
    else:
        scale = min(side / min(width, height), 1.0) if side else 1.0
    return max(1, round(width * scale)), max(1, round(height * scale))


def _load_image(path: Path, fit: tuple[int, int] | None, side: int | None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            target = _target(image.size, fit, side)
            if target != image.size:
                image = image.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise CameraError(f"replay image {path} cannot be read: {exc}") from None


class ReplaySource:
    """A folder of images (sorted by name), a single image, or a video file, cycled at `fps`."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        size: tuple[int, int] | None = None,
        model_side: int | None = None,
    ) -> None:
        """Play ``path`` at ``fps``; frames fit ``size`` if given, else have the shorter side
        ``model_side`` if given, else fit ``width`` x ``height``."""
        self.path = path
        self.width = width
        self.height = height
        self._fit = size if size is not None or not model_side else None
        if size is None and not model_side:
            self._fit = (width, height)
        self._side = model_side
        self.fps = fps
        self._stop = threading.Event()
        self._frames: list[np.ndarray] = []
        self._video = None
        self._index = 0
        self._count = 0
        self._pacer = Pacer(fps, self._stop)

    def describe(self) -> str:
        """E.g. `replay /data/photos (12 images)`."""
        if self.path.is_file() and self.path.suffix.lower() not in IMAGE_SUFFIXES:
            return f"replay video {self.path}"
        return (
            f"replay {self.path} ({self._count} images)" if self._count else f"replay {self.path}"
        )

    def open(self) -> None:
        """Decode the images (or open the video)."""
        self._stop.clear()
        self._pacer = Pacer(self.fps, self._stop)
        if self.path.is_dir():
            files = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not files:
                raise CameraError(
                    f"replay folder {self.path} holds no .jpg/.jpeg/.png files; add some images"
                )
            self._frames = [_load_image(p, self._fit, self._side) for p in files]
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._frames = [_load_image(self.path, self._fit, self._side)]
        elif self.path.is_file():
            self._video = self._open_video()
        else:
            raise CameraError(f"replay path {self.path} does not exist")
        self._count = len(self._frames)
        self._index = 0

    def _open_video(self):  # noqa: ANN202 - cv2.VideoCapture, which may not be installed
        try:
            import cv2
        except ImportError:
            raise CameraError(
                f"replaying the video {self.path} needs OpenCV: "
                "pip install opencv-python-headless (or use a folder of images)"
            ) from None
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise CameraError(f"OpenCV cannot open the video {self.path}")
        return capture

    def _next_video_frame(self) -> np.ndarray:
        import cv2

        ok, frame = self._video.read()
        if not ok:  # end of the video: start again
            self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._video.read()
            if not ok:
                raise CameraError(f"the video {self.path} has no readable frames")
        height, width = frame.shape[:2]
        target = _target((width, height), self._fit, self._side)
        if target != (width, height):
            frame = cv2.resize(frame, target, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame[..., ::-1])

    def read(self) -> np.ndarray:
        """The next frame, once it is due."""
        frames, video = self._frames, self._video
        if not frames and video is None:
            raise CameraError("replay source is not open")
        self._pacer.wait()
        if video is not None:
            return self._next_video_frame()
        frame = frames[self._index % len(frames)]
        self._index = (self._index + 1) % len(frames)
        return frame

    def close(self) -> None:
        """Stop waiting and drop the decoded frames."""
        self._stop.set()
        if self._video is not None:
            self._video.release()
            self._video = None
        self._frames = []
