"""The live view's JPEGs: a camera frame scaled to at most 640 px, encoded only when asked.

Nothing is encoded while nobody watches: the page asks for the next frame when it has shown
the previous one (and only while it is visible), and one encoding serves every viewer of the
same frame.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass

from PIL import Image

from ..camera import Frame

MAX_SIDE = 640  # pixels: the longest side of a live-view JPEG
QUALITY = 75
WATCHING_WINDOW = 3.0  # seconds: a frame asked for this recently means someone is watching


@dataclass(frozen=True)
class EncodedFrame:
    """One camera frame as a JPEG."""

    number: int
    captured: float  # Unix seconds
    jpeg: bytes
    width: int
    height: int


class FrameEncoder:
    """Encodes camera frames as JPEG on request, keeping the newest one for other viewers."""

    def __init__(self, max_side: int = MAX_SIDE, quality: int = QUALITY) -> None:
        self.max_side = max_side
        self.quality = quality
        self._lock = threading.Lock()
        self._last: EncodedFrame | None = None
        self._encoded = 0
        self._asked = 0.0  # monotonic time of the last request; 0: never

    def encode(self, frame: Frame) -> EncodedFrame:
        """``frame`` as a JPEG (from the cache when it is the one encoded last)."""
        with self._lock:
            self._asked = time.monotonic()
            last = self._last
            if last is not None and last.number == frame.number:
                return last
            image = Image.fromarray(frame.image)
            if max(image.size) > self.max_side:
                image.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=self.quality)
            encoded = EncodedFrame(
                frame.number, frame.captured, buffer.getvalue(), image.width, image.height
            )
            self._last = encoded
            self._encoded += 1
            return encoded

    @property
    def encoded(self) -> int:
        """Frames encoded since start."""
        return self._encoded

    @property
    def watching(self) -> bool:
        """True when a frame was asked for in the last few seconds."""
        return self._asked > 0 and time.monotonic() - self._asked < WATCHING_WINDOW
