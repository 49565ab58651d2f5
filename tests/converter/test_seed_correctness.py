"""The seed's correctness case: a consumer that reads the models by position learns real photos.

The seed trained its softmax head through the five models, fed by position, on flower photos and
required more than 80% accuracy on held-out photos of 5 classes, for SGD, Adam, L2 and quantized
bases, from ``MobileNetV2Base`` and from a MobileNetV2 SavedModel. Here the photos are
scikit-image's sample photos (5 of them, one class each), the "shots" are different crops, flips
and exposures of each (``tests.support.photos.variant``), and the held-out shots are crops never
trained on.

ImageNet weights cannot be downloaded here, so the bases use the converter's seeded random
weights (``weights=None``: He initialisation). Those features are all positive and share a large
common component, so the seed's SGD learning rate (0.001, for ImageNet features) diverges on them;
the learning rates below are the largest that train stably, and the runs are 100 epochs of the
seed's loop instead of 30 (each epoch is two steps here: 120 shots in batches of 128).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from tests.converter.positional_consumer import PositionalConsumer
from tests.support import photos
from tfltransfer import bases, heads, optimizers
from tfltransfer.bases.mobilenetv2_base import he_initialize
from tfltransfer.tflite_transfer_converter import TFLiteTransferConverter

CLASSES = ("astronaut", "cat", "coffee", "rocket", "motorcycle")
IMAGE_SIZE = 160
BOTTLENECK_SHAPE = (5, 5, 1280)
BATCH_SIZE = 128
TRAIN_SHOTS = range(24)  # per class
HELD_OUT_SHOTS = range(1000, 1010)  # per class, crops never trained on
EPOCHS = 100
TARGET = 0.80


def shots(indices: range) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 160, 160, 3)`` in [0, 1] and one-hot labels, class by class."""
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for index in indices:
            shot = Image.fromarray(photos.variant(name, index))
            shot = shot.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            images.append(np.asarray(shot, np.float32) / 255.0)
            labels.append(label)
    return np.stack(images), np.eye(len(CLASSES), dtype=np.float32)[labels]


@pytest.fixture(scope="module")
def photo_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Shuffled training shots (as the seed's data generator gave them) and held-out shots."""
    train_x, train_y = shots(TRAIN_SHOTS)
    order = np.random.default_rng(0).permutation(len(train_x))
    return {"train": (train_x[order], train_y[order]), "held_out": shots(HELD_OUT_SHOTS)}


@pytest.fixture(scope="module")
def mobilenet_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """MobileNetV2 (random He weights) exported as a SavedModel, as the seed exported it."""
    net = keras.applications.MobileNetV2(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None
    )
    he_initialize(net)
    path = tmp_path_factory.mktemp("mobilenet") / "saved_model"
    net.export(str(path), verbose=False)
    return str(path)


def mobilenet(quantize: bool = False) -> bases.MobileNetV2Base:
    return bases.MobileNetV2Base(image_size=IMAGE_SIZE, weights=None, quantize=quantize)


CASES = {
    "mobilenet_sgd": (lambda d: mobilenet(), lambda: optimizers.SGD(1e-4), None),
    "mobilenet_sgd_l2": (lambda d: mobilenet(), lambda: optimizers.SGD(1e-4), 0.1),
    "mobilenet_quantized_sgd": (lambda d: mobilenet(True), lambda: optimizers.SGD(1e-4), None),
    "mobilenet_adam": (lambda d: mobilenet(), lambda: optimizers.Adam(1e-4), None),
    "saved_model_sgd": (
        lambda d: bases.SavedModelBase(d, input_range="-1,1"),
        lambda: optimizers.SGD(1e-4),
        None,
    ),
    "saved_model_quantized_sgd": (
        lambda d: bases.SavedModelBase(d, quantize=True, input_range="-1,1"),
        lambda: optimizers.SGD(1e-4),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_positional_consumer_learns_held_out_photos(case, photo_sets, mobilenet_dir):
    make_base, make_optimizer, l2 = CASES[case]
    base = make_base(mobilenet_dir)
    assert base.bottleneck_shape() == BOTTLENECK_SHAPE
    head = heads.SoftmaxClassifierHead(BATCH_SIZE, BOTTLENECK_SHAPE, len(CLASSES), l2_reg=l2)
    converter = TFLiteTransferConverter(
        len(CLASSES), base, head, make_optimizer(), train_batch_size=BATCH_SIZE
    )
    consumer = PositionalConsumer(converter._convert())

    train_x, train_y = photo_sets["train"]
    held_x, held_y = photo_sets["held_out"]
    train_b, held_b = consumer.bottlenecks(train_x), consumer.bottlenecks(held_x)
    assert train_b.shape == (len(train_x), *BOTTLENECK_SHAPE)
    losses = [consumer.train_epoch(train_b, train_y) for _ in range(EPOCHS)]
    accuracy = consumer.accuracy(held_b, held_y)
    print(f"{case}: loss {losses[0]:.3f} -> {losses[-1]:.3f}, held-out accuracy {accuracy:.3f}")
    assert losses[-1] < losses[0]
    assert accuracy > TARGET
