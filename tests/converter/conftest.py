"""Fixtures for the converter tests: a tiny SavedModel base and bundle building."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

from tests.converter.helpers import TINY_IMAGE, LiteBundle  # noqa: E402
from tfltransfer import bases, optimizers  # noqa: E402
from tfltransfer.tflite_transfer_converter import TFLiteTransferConverter  # noqa: E402


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small convolutional image model exported as a SavedModel (input range 0..255)."""
    keras.utils.set_random_seed(7)
    image = keras.Input((TINY_IMAGE, TINY_IMAGE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(image)
    x = keras.layers.Conv2D(6, 3, strides=4, padding="same", activation="relu")(x)
    model = keras.Model(image, x)
    path = tmp_path_factory.mktemp("tiny_base") / "saved_model"
    model.export(str(path), verbose=False)
    return path


@pytest.fixture(scope="session")
def build_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path):
    """``build_bundle(head, optimizer=None, base=None, num_classes=3, batch=8)`` -> LiteBundle."""
    counter = iter(range(10_000))

    def build(head, optimizer=None, base=None, num_classes=3, batch=8, verify=True, **kwargs):
        base = base or bases.SavedModelBase(tiny_base_dir, input_range="0,255")
        optimizer = optimizer or optimizers.SGD(0.1)
        out = tmp_path_factory.mktemp("bundles") / f"bundle_{next(counter)}"
        converter = TFLiteTransferConverter(num_classes, base, head, optimizer, batch, **kwargs)
        converter.convert_and_save(out, verify=verify)
        return LiteBundle(out)

    return build
