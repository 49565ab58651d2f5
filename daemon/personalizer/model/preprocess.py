"""Turn what a caller gives into the base model's input, as the bundle's input contract says.

Image bundles (``input.kind == "image"``): as the seed's app did, take the centre square of the
frame (or pad the frame to a square, which keeps the whole field of view), resize it to the
model's size with bilinear filtering (Pillow's, which filters over the whole footprint of each
output pixel when it shrinks), and scale to RGB float32 in [0, 1]. A uint8 frame whose shorter
side already is the model's size (the Pi camera's stream, replayed images) is only sliced.

A uint8 frame whose centre square is at most FAST_RESIZE_LIMIT (1.125x) the model's size, as a
USB camera's smallest mode that covers the model is (320x240 for 224), is resized with
OpenCV's plain bilinear when OpenCV is loaded already (the OpenCV camera loads it; importing it
only for this would add about 20 MB to the daemon's RSS): 0.2 ms against Pillow's 1.0 ms here. Plain
bilinear interpolation reads the 2x2 source pixels around each output pixel; that is what a
filtered shrink reads too while the shrink is close to 1x (Pillow's triangle is 1.07 source
pixels wide at 240 -> 224), so no source pixel is skipped. Measured on pure noise, the worst
case: at 240 -> 224 the two differ by 3.8 of 255 on average (noise std 48.9 against 45.6).
Further out plain bilinear starts to skip pixels: at 1.25x (120 -> 96) the difference was 11 of
255 with 24% more noise kept, and a 7x7 head trained on such frames recognised 10 of 20
held-out frames where Pillow's gave 19 of 20; so every larger shrink takes Pillow's.

An array that is already in the model's input form (floats, model size) passes through after a
shape and range check, so callers that preprocess themselves pay nothing.

Tensor bundles (``input.kind == "tensor"``: sound windows, sensor vectors): a float array of the
input's shape, with or without the batch of 1, within the declared range if there is one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..bundle_format import InputSpec
from ..errors import ImageFormatError

Fit = Literal["crop", "pad"]
FITS = ("crop", "pad")
# Float inputs may overshoot [0, 1] by rounding in the caller's own scaling.
_RANGE_SLACK = 1e-3
_SPOT_ROWS = 8  # rows of a float input whose range is checked
FAST_RESIZE_LIMIT = 1.125  # OpenCV's plain bilinear up to this factor of the model's size


def _opencv() -> Any:
    """OpenCV's module when something (the OpenCV camera) has loaded it, else None."""
    return sys.modules.get("cv2")


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
            if not _is_rgb8(image):
                raise ImageFormatError(
                    f"a uint8 image must be HxWx3 RGB, got shape {list(image.shape)}; convert "
                    "grey or RGBA frames to RGB first"
                )
            fast = self._fast_crop(image)
            return fast if fast is not None else self._from_pil(Image.fromarray(image))
        if image.dtype.kind == "f":
            return self._from_float(image)
        raise ImageFormatError(
            f"image dtype {image.dtype} is not supported: pass uint8 RGB (HxWx3) or float32 "
            f"already scaled to [0, 1] at the model size {self.shape}"
        )

    def into(self, image: Any, out: np.ndarray) -> None:
        """Write the model input for ``image`` into ``out`` (the interpreter's input tensor, of
        :attr:`shape`): a camera frame that takes the fast path is scaled straight into it, in
        one pass, without a float copy of its own."""
        square = self._fast_square(image) if _is_rgb8(image) else None
        if square is None:
            out[...] = self(image)
        else:
            np.multiply(square, _SCALE, out=out.reshape(square.shape), casting="unsafe")

    def _fast_square(self, image: np.ndarray) -> np.ndarray | None:
        """The model-size uint8 square of a frame by slicing (and OpenCV's bilinear within
        FAST_RESIZE_LIMIT, see the module doc) when that applies: crop fit, square model;
        None when it takes Pillow's path."""
        height, width = image.shape[:2]
        side = min(height, width)
        if self.fit != "crop" or self.height != self.width or side < self.height:
            return None
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top : top + side, left : left + side]
        if side != self.height:
            cv2 = _opencv()
            if cv2 is None or side > FAST_RESIZE_LIMIT * self.height:
                return None
            square = cv2.resize(square, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return square

    def _fast_crop(self, image: np.ndarray) -> np.ndarray | None:
        """:meth:`_fast_square` as the model's float input (None: not the fast path)."""
        square = self._fast_square(image)
        if square is None:
            return None
        pixels = square.astype(np.float32)
        pixels *= _SCALE
        return pixels.reshape(self.shape)

    def _square(self, image: Image.Image) -> Image.Image:
        """The centre square of ``image`` (or ``image`` padded to a square), not resized."""
        width, height = image.size
        side = min(width, height) if self.fit == "crop" else max(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        if self.fit == "crop":
            return image.crop((left, top, left + side, top + side))
        square = Image.new("RGB", (side, side))
        square.paste(image, (-left, -top))
        return square

    def square(self, image: Any, size: int | None = None) -> np.ndarray:
        """The square the model sees of ``image``, as uint8 RGB of ``size`` pixels (default:
        the model's), e.g. to keep it; :meth:`__call__` of it gives the same model input."""
        size = size or self.height
        if isinstance(image, np.ndarray) and image.dtype.kind == "f":
            pixels = np.clip(self._from_float(image)[0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
            picture = Image.fromarray(pixels)
        elif isinstance(image, Image.Image):
            picture = image.convert("RGB")
        elif isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
            picture = Image.fromarray(image)
        else:
            self(image)  # raises the ImageFormatError that says what is wrong
            raise ImageFormatError(f"cannot take {type(image).__name__} as an image")
        square = self._square(picture)
        if square.size != (size, size):
            square = square.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(square, dtype=np.uint8)

    def _from_pil(self, image: Image.Image) -> np.ndarray:
        square = self._square(image)
        if square.size != (self.width, self.height):
            square = square.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(square, dtype=np.float32)
        pixels *= _SCALE
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


_SCALE = np.float32(1.0 / 255.0)


def _is_rgb8(image: Any) -> bool:
    """A uint8 HxWx3 frame (anything else takes the checked path of ``__call__``)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )


class TensorPreprocessor:
    """Callable that checks an array against a tensor input and returns it as ``(1, ...)``
    float32."""

    def __init__(self, shape: tuple[int, ...], value_range: tuple[float, float] | None) -> None:
        """Accept arrays of ``shape`` (batch of 1 included) or ``shape[1:]``; values within
        ``value_range`` when given."""
        self.shape = tuple(shape)
        self.value_range = None if value_range is None else tuple(value_range)

    def __call__(self, value: Any) -> np.ndarray:
        """Return the model input for ``value``.

        Raises:
            ImageFormatError: not a numeric array, another shape, integers, values that are
                not finite or outside the declared range; the message names which.
        """
        if not isinstance(value, np.ndarray):
            raise ImageFormatError(
                f"this bundle takes tensor inputs: pass a numpy float array of shape "
                f"{list(self.shape[1:])} (or {list(self.shape)}), got {type(value).__name__}"
            )
        if value.shape not in (self.shape, self.shape[1:]):
            raise ImageFormatError(
                f"the bundle's input has shape {list(self.shape[1:])} (or {list(self.shape)} "
                f"with the batch), got {list(value.shape)}"
            )
        if value.dtype.kind != "f":
            raise ImageFormatError(
                f"the bundle's input is float32, got {value.dtype}; convert the array (and "
                "scale it as the model expects) before passing it"
            )
        x = value.reshape(self.shape).astype(np.float32, copy=False)
        low, high = float(x.min()), float(x.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ImageFormatError("the input holds NaN or infinite values")
        if self.value_range is not None:
            lo, hi = self.value_range
            slack = _RANGE_SLACK * max(1.0, hi - lo)
            if low < lo - slack or high > hi + slack:
                raise ImageFormatError(
                    f"the bundle's input takes values in [{lo:g}, {hi:g}], got [{low:g}, {high:g}]"
                )
        return x

    def into(self, value: Any, out: np.ndarray) -> None:
        """Write the model input for ``value`` into ``out``."""
        out[...] = self(value)


def preprocessor_for(spec: InputSpec, fit: Fit = "crop") -> Callable[[Any], np.ndarray]:
    """The preprocessor of a bundle's input contract: images or tensors."""
    if spec.kind == "image":
        return ImagePreprocessor(spec.shape[1], spec.shape[2], fit=fit)
    value_range = None if spec.range is None else (float(spec.range[0]), float(spec.range[1]))
    return TensorPreprocessor(tuple(spec.shape), value_range)
