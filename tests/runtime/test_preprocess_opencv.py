"""The USB camera's frames (OpenCV loaded by its camera) take OpenCV's bilinear resize when the
shrink is close to 1x. A module of its own: the board lane's venvs have no OpenCV (install.sh
does not install it), and the lane runs tests/runtime/test_preprocess.py with none skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from personalizer.model.preprocess import ImagePreprocessor


def test_a_frame_just_above_the_model_size_takes_plain_bilinear_close_to_pillows() -> None:
    """A USB camera's 320x240 for a 224 model (1.07x) takes OpenCV's bilinear (5x cheaper);
    on pure noise, the worst case, it stays within 4 of 255 of Pillow's filtered shrink."""
    cv2 = pytest.importorskip("cv2")
    frame = (np.random.default_rng(1).random((240, 320, 3)) * 255).astype(np.uint8)
    preprocess = ImagePreprocessor(224, 224, fit="crop")
    got = preprocess(frame)
    square = np.ascontiguousarray(frame[:, 40:280])
    opencv = cv2.resize(square, (224, 224), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got[0], opencv.astype(np.float32) / 255.0, rtol=0, atol=1e-6)
    pillow = preprocess(Image.fromarray(frame))
    assert float(np.abs(got - pillow).mean()) * 255 < 4.0
