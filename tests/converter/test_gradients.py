"""The hand-written gradients, run in the LiteRT interpreter, against TensorFlow and finite
differences."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.converter.helpers import TINY_BOTTLENECK, mlp_head, softmax_head
from tfltransfer import heads
from tfltransfer.heads.keras_model_head import translate_model


def batch(rng: np.random.Generator, n: int, num_classes: int = 3) -> tuple:
    x = rng.uniform(0, 2, size=(n, *TINY_BOTTLENECK)).astype(np.float32)
    y = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, n)]
    return x, y


def perturbed(params: list[np.ndarray], rng: np.random.Generator, scale: float = 0.1) -> list:
    return [(p + rng.normal(0, scale, p.shape)).astype(np.float32) for p in params]


def finite_difference_check(bundle, x, y, params, rng, probes: int = 12) -> None:
    """Central differences in float64 arithmetic on the float32 model, at random coordinates."""
    _, grads = bundle.train_head(x, y, params)
    for _ in range(probes):
        i = int(rng.integers(len(params)))
        index = tuple(int(rng.integers(d)) for d in params[i].shape)
        h = 1e-2
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[i][index] += h
        minus[i][index] -= h
        numeric = (bundle.train_head(x, y, plus)[0] - bundle.train_head(x, y, minus)[0]) / (2 * h)
        assert grads[i][index] == pytest.approx(numeric, rel=2e-2, abs=2e-4), (i, index)


def autodiff_grads(model: keras.Model, x, y, params) -> tuple[float, list[np.ndarray]]:
    """TensorFlow's gradients of the same loss, from the Keras model's own layers' math."""
    program = translate_model(model)
    tensors = [tf.constant(p) for p in params]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = program.loss(tf.constant(x), tf.constant(y), tensors)
    return float(loss), [g.numpy() for g in tape.gradient(loss, tensors)]


def test_softmax_head_gradients_match_finite_differences(build_bundle):
    rng = np.random.default_rng(0)
    bundle = build_bundle(softmax_head(l2_reg=0.05))
    params = perturbed(bundle.initialize(), rng)
    x, y = batch(rng, 5)
    finite_difference_check(bundle, x, y, params, rng)


def test_softmax_head_loss_and_gradients_are_exact(build_bundle):
    """Closed form: loss = mean CE + l2*|W|^2, dW = X^T (softmax - Y) / B + 2 l2 W."""
    rng = np.random.default_rng(1)
    l2 = 0.05
    bundle = build_bundle(softmax_head(l2_reg=l2))
    w, b = perturbed(bundle.initialize(), rng)
    x, y = batch(rng, 4)
    flat = x.reshape(4, -1).astype(np.float64)
    logits = flat @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.sum(y * np.log(p), 1)) + l2 * np.sum(w.astype(np.float64) ** 2)
    got_loss, (dw, db) = bundle.train_head(x, y, [w, b])
    assert got_loss == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(dw, flat.T @ (p - y) / 4 + 2 * l2 * w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(db, (p - y).mean(0), rtol=1e-4, atol=1e-6)


def test_softmax_loss_is_stable_for_huge_logits(build_bundle):
    bundle = build_bundle(softmax_head())
    w, b = bundle.initialize()
    b = np.array([500.0, -500.0, 0.0], np.float32)  # softmax underflows to exactly 0 for class 1
    x = np.zeros((2, *TINY_BOTTLENECK), np.float32)
    y = np.eye(3, dtype=np.float32)[[1, 0]]
    loss, grads = bundle.train_head(x, y, [w, b])
    assert np.isfinite(loss) and loss == pytest.approx((1000.0 + 0.0) / 2, rel=1e-4)
    assert all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("hidden", ["relu", "relu6", "sigmoid", "tanh", "linear", "softmax"])
def test_mlp_head_gradients_match_tensorflow_and_finite_differences(build_bundle, hidden):
    rng = np.random.default_rng(2)
    model = mlp_head(hidden=hidden)
    bundle = build_bundle(heads.KerasModelHead(model), verify=False)
    assert not bundle.manifest["requires_flex"]
    params = perturbed(bundle.initialize(), rng, 0.05)
    x, y = batch(rng, 6)
    loss, grads = bundle.train_head(x, y, params)
    tf_loss, tf_grads = autodiff_grads(model, x, y, params)
    assert loss == pytest.approx(tf_loss, rel=1e-5)
    for got, expected in zip(grads, tf_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    finite_difference_check(bundle, x, y, params, rng, probes=6)


def test_gap_batchnorm_head_gradients(build_bundle):
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(8),
            keras.layers.Activation("tanh"),
            keras.layers.BatchNormalization(trainable=False),
            keras.layers.Dense(
                3, activation="softmax", bias_regularizer=keras.regularizers.l2(0.1)
            ),
        ]
    )
    # Give BatchNorm statistics that are not the identity.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.linspace(-0.5, 0.5, n))
            layer.moving_variance.assign(np.linspace(0.5, 2.0, n))
    bundle = build_bundle(heads.KerasModelHead(model))
    assert not bundle.manifest["requires_flex"]
    # Only trainable variables are parameters: BN statistics and the frozen BN are baked in.
    assert len(bundle.manifest["parameters"]) == len(model.trainable_variables)
    rng = np.random.default_rng(5)
    params = perturbed(bundle.initialize(), rng, 0.05)
    x, y = batch(rng, 4)
    loss, grads = bundle.train_head(x, y, params)
    tf_loss, tf_grads = autodiff_grads(model, x, y, params)
    assert loss == pytest.approx(tf_loss, rel=1e-5)
    for got, expected in zip(grads, tf_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # Inference equals the Keras model's own inference.
    probs = bundle.probabilities(x[:1], bundle.initialize())
    np.testing.assert_allclose(probs, model(x[:1], training=False), rtol=1e-4, atol=1e-6)


def test_gradient_is_the_mean_over_the_actual_batch(build_bundle):
    rng = np.random.default_rng(6)
    bundle = build_bundle(heads.KerasModelHead(mlp_head(l2=0.0)), batch=8, verify=False)
    params = perturbed(bundle.initialize(), rng, 0.05)
    x, y = batch(rng, 8)
    singles = [bundle.train_head(x[i : i + 1], y[i : i + 1], params) for i in range(3)]
    loss3, grads3 = bundle.train_head(x[:3], y[:3], params)
    assert loss3 == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-5)
    for i, g in enumerate(grads3):
        np.testing.assert_allclose(g, np.mean([s[1][i] for s in singles], 0), rtol=1e-4, atol=1e-6)
    loss8, _ = bundle.train_head(x, y, params)  # the largest batch still works after a small one
    assert np.isfinite(loss8)


def test_dropout_masks_units_in_training_only(build_bundle):
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", bias_initializer="ones"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    bundle = build_bundle(heads.KerasModelHead(model))
    assert not bundle.manifest["requires_flex"]
    assert "RANDOM_UNIFORM" in bundle.manifest["models"]["train_head"]["ops"]
    params = bundle.initialize()
    rng = np.random.default_rng(9)
    x, y = batch(rng, 1)
    zero_rows = []
    for _ in range(20):
        _, grads = bundle.train_head(x, y, params)
        last_kernel_grad = grads[2]  # (64, 3): rows of dropped hidden units are exactly zero
        zero_rows.append(int(np.sum(~last_kernel_grad.any(axis=1))))
    assert 0.3 < np.mean(zero_rows) / 64 < 0.7
    assert len(set(zero_rows)) > 1  # a fresh mask each run
    probs = [bundle.probabilities(x, params) for _ in range(2)]
    np.testing.assert_array_equal(probs[0], probs[1])  # no dropout at inference
    np.testing.assert_allclose(probs[0], model(x, training=False), rtol=1e-4, atol=1e-6)
