"""A non-image bundle personalised through the Python API: tones told apart from sound windows.

The bundle's base is a tensor base (``tests/support/spectral_base.py``: 128 samples in [-1, 1]
-> log magnitude spectrum), so the model takes float arrays of the input's shape instead of
camera frames: what a sound or sensor personalization on the board does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from personalizer import ImageFormatError
from tests.support.bundles import BundleSpec, build_bundle

WINDOW = 128
TONES = {"hum": 6.0, "whistle": 19.0, "beep": 41.0}  # cycles per window


@pytest.fixture(scope="module")
def sound_bundle() -> Path:
    """Spectral tensor base, softmax head, Adam (learning rate 0.01), three classes."""
    return build_bundle(
        BundleSpec(
            base="spectral",
            window=WINDOW,
            num_classes=3,
            class_names=tuple(TONES),
            learning_rate=0.01,
            train_batch_size=8,
        )
    )


def tone(name: str, rng: np.random.Generator) -> np.ndarray:
    """One window of a noisy tone: frequency jitter, random phase and loudness."""
    cycles = TONES[name] + rng.uniform(-1.0, 1.0)
    t = np.arange(WINDOW) / WINDOW
    wave = rng.uniform(0.2, 0.7) * np.sin(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi))
    return np.clip(wave + rng.normal(0, 0.1, WINDOW), -1, 1).astype(np.float32)


def test_the_bundle_takes_tensors(make_model, sound_bundle):
    model = make_model(sound_bundle)
    assert model.input_kind == "tensor"
    assert model.input_shape == (1, WINDOW)
    assert model.bottleneck_shape == (WINDOW // 2,)
    manifest = model.bundle.manifest
    assert not manifest.is_image
    assert tuple(manifest.input.range) == (-1.0, 1.0)


def test_sound_personalization_learns_tones_end_to_end(make_model, sound_bundle, tmp_path):
    rng = np.random.default_rng(7)
    model = make_model(sound_bundle)
    for name in TONES:
        for i in range(8):
            window = tone(name, rng)
            # With or without the batch of 1, as the caller has it.
            model.add_sample(window if i % 2 else window[np.newaxis], name)
    assert model.samples() == dict.fromkeys(TONES, 8)
    losses = []
    model.train(epochs=40, on_loss=lambda _epoch, loss: losses.append(loss))
    assert losses[-1] < losses[0] / 4

    held_out = [(name, tone(name, rng)) for name in TONES for _ in range(20)]
    correct = [model.predict(window)[0].class_name == name for name, window in held_out]
    accuracy = float(np.mean(correct))
    assert accuracy >= 0.95, f"held-out accuracy {accuracy:.2f}"

    model.save(tmp_path / "state.npz")
    restored = make_model(sound_bundle)
    restored.load(tmp_path / "state.npz")
    name, window = held_out[0]
    assert restored.predict(window) == model.predict(window)
    np.testing.assert_array_equal(restored.bottleneck(window), model.bottleneck(window))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros(WINDOW // 2, np.float32), r"input has shape \[128\].*got \[64\]"),
        (np.zeros((2, WINDOW), np.float32), r"got \[2, 128\]"),
        (np.zeros(WINDOW, np.int16), "float32, got int16"),
        (np.full(WINDOW, np.nan, np.float32), "NaN or infinite"),
        (np.full(WINDOW, 2.0, np.float32), r"values in \[-1, 1\], got \[2, 2\]"),
        ([0.0] * WINDOW, "numpy float array of shape \\[128\\].*got list"),
        (Image.new("RGB", (8, 8)), "tensor inputs.*got Image"),
    ],
    ids=["short", "batch", "int16", "nan", "range", "list", "image"],
)
def test_wrong_inputs_are_refused_with_what_the_bundle_takes(
    make_model, sound_bundle, value, message
):
    model = make_model(sound_bundle)
    with pytest.raises(ImageFormatError, match=message):
        model.add_sample(value, "hum")
    with pytest.raises(ImageFormatError, match=message):
        model.predict(value)
    assert model.samples() == dict.fromkeys(TONES, 0)
