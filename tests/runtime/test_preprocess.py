"""Frames become model input: centre square (crop or pad), model size, RGB floats in [0, 1]."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from personalizer import ImageFormatError
from personalizer.model.preprocess import ImagePreprocessor


def _framed(width: int, height: int) -> np.ndarray:
    """A frame whose centre square is white and whose margins are black."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    frame[top : top + side, left : left + side] = 255
    return frame


def test_crop_keeps_the_centre_square_and_resizes() -> None:
    out = ImagePreprocessor(32, 32, fit="crop")(_framed(160, 90))
    assert out.shape == (1, 32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0)


def test_pad_keeps_the_whole_frame_with_black_bars() -> None:
    frame = np.full((50, 100, 3), 255, dtype=np.uint8)  # wide: bars above and below
    out = ImagePreprocessor(40, 40, fit="pad")(frame)[0]
    # 100x100 square, frame rows 25..75 -> model rows 10..30 (bilinear blurs the edges).
    np.testing.assert_allclose(out[:9], 0.0)
    np.testing.assert_allclose(out[11:29], 1.0)
    np.testing.assert_allclose(out[31:], 0.0)


def test_values_are_scaled_to_unit_range_in_rgb_order() -> None:
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 255, 51, 0
    out = ImagePreprocessor(8, 8)(frame)
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.2, 0.0], atol=1e-6)


def test_pil_images_are_accepted() -> None:
    image = Image.new("RGBA", (30, 20), (255, 0, 0, 128))
    out = ImagePreprocessor(16, 16)(image)
    np.testing.assert_allclose(out[0, 5, 5], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("shape", [(96, 96, 3), (1, 96, 96, 3)])
def test_float_input_in_model_form_passes_through_unchanged(shape) -> None:
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = ImagePreprocessor(96, 96)(x)
    assert out.shape == (1, 96, 96, 3)
    np.testing.assert_array_equal(out.reshape(shape), x)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((20, 20), np.uint8), "HxWx3"),
        (np.zeros((20, 20, 4), np.uint8), "RGBA"),
        (np.zeros((0, 20, 3), np.uint8), "HxWx3"),
        (np.zeros((20, 20, 3), np.int16), "dtype int16"),
        (np.zeros((50, 50, 3), np.float32), r"input shape \[1, 96, 96, 3\]"),
        (np.full((96, 96, 3), 255.0, np.float32), r"\[0, 1\]"),
        (np.full((96, 96, 3), np.nan, np.float32), r"\[0, 1\]"),
        ("frame.jpg", "numpy array or PIL image"),
    ],
    ids=["grey", "rgba", "empty", "int16", "float-wrong-size", "float-0-255", "nan", "path"],
)
def test_unusable_images_are_refused_with_the_reason(image, message) -> None:
    with pytest.raises(ImageFormatError, match=message):
        ImagePreprocessor(96, 96)(image)


def test_unknown_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="crop, pad"):
        ImagePreprocessor(96, 96, fit="stretch")


@pytest.mark.parametrize("size", [(256, 320), (224, 299), (200, 200), (480, 640)])
def test_a_uint8_frame_gives_what_pillow_gives_also_when_only_sliced(size) -> None:
    """A frame at the model's size is only sliced; the result is Pillow's, to the bit."""
    frame = (np.random.default_rng(0).random((*size, 3)) * 255).astype(np.uint8)
    photo = Image.fromarray(frame)
    preprocess = ImagePreprocessor(224, 224, fit="crop")
    got = preprocess(frame)
    want = preprocess(photo)  # a PIL image always takes Pillow's path
    assert got.shape == want.shape == (1, 224, 224, 3)
    np.testing.assert_array_equal(got, want)


def test_opencv_is_never_imported_only_for_the_resize() -> None:
    """Where no OpenCV camera loaded OpenCV (replay, picamera2), a 1.07x frame takes Pillow's
    resize: importing OpenCV for it would add about 20 MB to the daemon's RSS."""
    script = (
        "import sys, numpy as np\n"
        "from personalizer.model.preprocess import ImagePreprocessor\n"
        "ImagePreprocessor(224, 224)(np.zeros((240, 320, 3), np.uint8))\n"
        "print('cv2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("size", [(224, 224), (240, 320), (300, 500), (100, 120)])
def test_writing_straight_into_the_input_tensor_gives_the_same_input(size) -> None:
    # into() scales a fast-path frame straight into the interpreter's buffer; every other frame
    # takes __call__'s path: both give exactly what __call__ gives.
    preprocess = ImagePreprocessor(224, 224)
    frame = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = np.full(preprocess.shape, -1.0, dtype=np.float32)
    preprocess.into(frame, out)
    np.testing.assert_array_equal(out, preprocess(frame))
