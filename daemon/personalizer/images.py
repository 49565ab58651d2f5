"""Decoding images that arrive from outside (MQTT commands, the web page), size checked first;
encoding the ones the daemon sends, with a bound on their size.

JPEG, PNG and WebP (what phones and browsers produce). The pixel count is read from the file
header and checked against the limit *before* any pixel is decoded, so a small file that claims
a gigantic image (a decompression bomb) costs nothing. A photo's EXIF orientation is applied, so
a phone picture taken upright is used upright, as the phone shows it.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PersonalizerError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")


class ImageDecodeError(PersonalizerError, ValueError):
    """An image that cannot be used; the message says why and what is accepted."""


def decode_base64(text: str) -> bytes:
    """Bytes from standard base64 (a `data:image/...;base64,` prefix is allowed)."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageDecodeError(
            "image is not valid base64; send the JPEG, PNG or WebP file's bytes base64-encoded"
        ) from None


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode JPEG, PNG or WebP bytes into an upright HxWx3 uint8 RGB array of at most
    `max_pixels` pixels."""
    if not data:
        raise ImageDecodeError("image is empty; send a base64-encoded JPEG, PNG or WebP")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageDecodeError(
                        f"image is {width}x{height} = {width * height} pixels, more than the "
                        f"limit of {max_pixels} pixels (mqtt.max_image_pixels); send a smaller "
                        "image"
                    )
                rgb = ImageOps.exif_transpose(image).convert("RGB")
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("image is not a JPEG, PNG or WebP file; send one of those") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError(
            f"image has more than the limit of {max_pixels} pixels (mqtt.max_image_pixels); "
            "send a smaller image"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(
            f"image could not be decoded ({exc}); it may be truncated or damaged"
        ) from None
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise ImageDecodeError(f"image has an unusable shape {array.shape}")
    return array


def encode_image(image: np.ndarray, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Encode an HxWx3 uint8 RGB array as JPEG, PNG or WebP bytes."""
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bounded_jpeg(image: np.ndarray, side: int, quality: int, max_bytes: int) -> bytes:
    """A JPEG of an HxWx3 uint8 RGB array, scaled down to at most ``side`` pixels on its longer
    side, at ``quality``, and never more than ``max_bytes``.

    A photo of ``side`` 224 at quality 80 takes 8-20 KB; only a picture of fine detail
    everywhere (noise, gravel) goes over the limit, and it is encoded again at a lower quality,
    then at half the size, until it fits.
    """
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    if max(picture.size) > side:
        picture.thumbnail((side, side), Image.Resampling.BILINEAR)
    qualities = [q for q in (quality, 60, 40, 20) if q <= quality]
    while True:
        for level in qualities:
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=level)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        if min(picture.size) <= 16:
            raise ValueError(f"a JPEG of {picture.size} does not fit into {max_bytes} bytes")
        picture = picture.resize((max(picture.width // 2, 1), max(picture.height // 2, 1)))
