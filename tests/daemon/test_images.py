"""Images from phones and browsers: EXIF orientation is honoured, WebP is accepted."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from personalizer.images import ImageDecodeError, decode_image, encode_image
from tests.support.photos import photo

# EXIF orientation -> what a viewer does to the stored pixels to show them upright.
UPRIGHT = {
    1: lambda a: a,
    3: lambda a: np.rot90(a, 2),
    6: lambda a: np.rot90(a, -1),  # the camera was turned right: rotate clockwise
    8: lambda a: np.rot90(a, 1),
}


def phone_jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    """A JPEG as a phone writes it: the sensor's pixels plus an EXIF Orientation tag."""
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestPhone"  # Make
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_a_phone_photo_is_used_upright(orientation: int) -> None:
    stored = photo("rocket", 64)[:, :48]  # not square, so a wrong rotation shows in the shape
    decoded = decode_image(phone_jpeg(stored, orientation), 1_000_000)
    expected = UPRIGHT[orientation](stored)
    assert decoded.shape == expected.shape
    assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < 4  # JPEG noise only


def test_webp_is_accepted_and_the_pixel_limit_still_applies() -> None:
    pixels = photo("cat", 80)
    data = encode_image(pixels, "WEBP", quality=95)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    decoded = decode_image(data, 80 * 80)
    assert decoded.shape == (80, 80, 3)
    assert np.abs(decoded.astype(int) - pixels.astype(int)).mean() < 6
    with pytest.raises(ImageDecodeError, match="more than the limit of 100 pixels"):
        decode_image(data, 100)
