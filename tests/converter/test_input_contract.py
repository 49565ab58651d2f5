"""Every bottleneck model takes RGB floats in [0, 1] and folds the base's own scaling in."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.converter.helpers import softmax_head
from tfltransfer import bases, heads


def test_mobilenetv2_folds_its_minus1_1_scaling(build_bundle):
    base = bases.MobileNetV2Base(image_size=96, alpha=0.35, weights=None, pooling="avg")
    bundle = build_bundle(heads.SoftmaxClassifierHead(4, None, 3), base=base, verify=False)
    net = base.keras_model().layers[-1]  # MobileNetV2 itself, fed [-1, 1] directly
    image = np.random.default_rng(3).uniform(size=(1, 96, 96, 3)).astype(np.float32)
    expected = np.asarray(net(image * 2.0 - 1.0))
    np.testing.assert_allclose(bundle.bottleneck(image), expected, rtol=1e-4, atol=1e-4)
    assert bundle.manifest["input"]["range"] == [0.0, 1.0]
    assert bundle.manifest["base"]["native_input_range"] == [-1.0, 1.0]


@pytest.mark.parametrize(
    ("flag", "low", "high"), [("0,1", 0, 1), ("-1,1", -1, 1), ("0,255", 0, 255)]
)
def test_saved_model_base_folds_the_declared_input_range(build_bundle, tmp_path, flag, low, high):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))  # identity: shows the scaling
    model.export(str(tmp_path / "identity"), verbose=False)
    base = bases.SavedModelBase(tmp_path / "identity", input_range=flag)
    head = heads.SoftmaxClassifierHead(4, (192,), 3)
    bundle = build_bundle(head, base=base, verify=False)
    image = np.random.default_rng(0).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    expected = (image * (high - low) + low).reshape(1, -1)
    np.testing.assert_allclose(bundle.bottleneck(image), expected, rtol=1e-5, atol=1e-4)
    assert bundle.manifest["base"]["native_input_range"] == [float(low), float(high)]


def test_tiny_base_sees_0_255_when_fed_0_1(build_bundle, tiny_base_dir):
    import tensorflow as tf

    bundle = build_bundle(softmax_head(), verify=False)
    signature = tf.saved_model.load(str(tiny_base_dir)).signatures["serving_default"]
    image = np.random.default_rng(4).uniform(size=(1, 32, 32, 3)).astype(np.float32)
    (expected,) = signature(tf.constant(image * 255.0)).values()
    assert np.abs(expected.numpy()).max() > 0.01
    np.testing.assert_allclose(bundle.bottleneck(image), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_random_mobilenet_weights_give_usable_features():
    """--base_weights none: seeded He initialisation, not Keras' vanishing default."""
    first = bases.MobileNetV2Base(image_size=96, alpha=0.35, weights=None, pooling="avg")
    second = bases.MobileNetV2Base(image_size=96, alpha=0.35, weights=None, pooling="avg")
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(size=(1, 96, 96, 3)).astype(np.float32) for _ in range(2))
    features_a = np.asarray(first.keras_model()(a))
    assert 0.1 < np.abs(features_a).mean() < 100
    assert np.abs(features_a - np.asarray(first.keras_model()(b))).mean() > 0.01
    np.testing.assert_allclose(features_a, np.asarray(second.keras_model()(a)), rtol=1e-5)
