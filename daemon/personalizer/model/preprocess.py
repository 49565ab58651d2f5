"""Turn a camera frame into the base model's input: RGB float32 in [0, 1], square, model size.

As the seed's app did: take the centre square of the frame (or pad the frame to a square, which
keeps the whole field of view), resize it to the model's size with bilinear filtering, and scale
to [0, 1]. An array that is already in the model's input form (floats, model size) passes through
after a shape and range check, so callers that preprocess themselves pay nothing.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from PIL import Image

from ..errors import ImageFormatError

Fit = Literal["crop", "pad"]
FITS = ("crop", "pad")
# Float inputs may overshoot [0, 1] by rounding in the caller's own scaling.
_RANGE_SLACK = 1e-3
_SPOT_ROWS = 8  # rows of a float input whose range is checked


class ImagePreprocessor:
    """Callable that maps an image to a ``(1, H, W, 3)`` float32 array in [0, 1]."""

    def __init__(self, height: int, width: int, fit: Fit = "crop") -> None:
        """Preprocess to ``height`` x ``width``; ``fit`` is ``crop`` (centre square) or ``pad``."""
        if fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
        self.height, self.width, self.fit = height, width, fit

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The model input shape this preprocessor produces."""
        return (1, self.height, self.width, 3)

    def __call__(self, image: Any) -> np.ndarray:
        """Return the model input for ``image``.

        ``image`` is an ``HxWx3`` uint8 RGB array of any size, a PIL image, or a float array of
        shape ``(H, W, 3)`` or ``(1, H, W, 3)`` at the model's size with values in [0, 1].

        Raises:
            ImageFormatError: any other shape, dtype or value range, named in the message.
        """
        if isinstance(image, Image.Image):
            return self._from_pil(image.convert("RGB"))
        if not isinstance(image, np.ndarray):
            raise ImageFormatError(
                f"image must be a numpy array or PIL image, got {type(image).__name__}"
            )
        if image.dtype == np.uint8:
            if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ImageFormatError(
                    f"a uint8 image must be HxWx3 RGB, got shape {list(image.shape)}; convert "
                    "grey or RGBA frames to RGB first"
                )
            return self._from_pil(Image.fromarray(image))
        if image.dtype.kind == "f":
            return self._from_float(image)
        raise ImageFormatError(
            f"image dtype {image.dtype} is not supported: pass uint8 RGB (HxWx3) or float32 "
            f"already scaled to [0, 1] at the model size {self.shape}"
        )

    def _from_pil(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        side = min(width, height) if self.fit == "crop" else max(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        if self.fit == "crop":
            square = image.crop((left, top, left + side, top + side))
        else:
            square = Image.new("RGB", (side, side))
            square.paste(image, (-left, -top))
        if square.size != (self.width, self.height):
            square = square.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(square, dtype=np.float32)
        pixels *= 1.0 / 255.0
        return pixels.reshape(self.shape)

    def _from_float(self, image: np.ndarray) -> np.ndarray:
        if image.shape not in (self.shape, self.shape[1:]):
            raise ImageFormatError(
                f"a float image must already have the model's input shape {list(self.shape)} "
                f"or {list(self.shape[1:])}, got {list(image.shape)}; pass a uint8 RGB frame "
                "of any size instead to have it cropped and resized"
            )
        # A spot check of a few whole rows rather than a full pass: it catches 0..255 floats
        # and other wholesale mistakes, while a full (cache-cold) min/max pass cost 3-4% of a
        # 224 px predict(). Whole rows are contiguous, so the check stays a few microseconds.
        rows = image.reshape(self.height, -1)
        spot = rows[:: max(1, self.height // _SPOT_ROWS)]
        low, high = float(spot.min()), float(spot.max())
        if not (low >= -_RANGE_SLACK and high <= 1.0 + _RANGE_SLACK):
            raise ImageFormatError(
                f"a float image must hold values in [0, 1], got [{low:g}, {high:g}]; divide "
                "0..255 pixels by 255 or pass the uint8 frame"
            )
        return image.reshape(self.shape).astype(np.float32, copy=False)
