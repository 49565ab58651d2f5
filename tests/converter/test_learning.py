"""Training through the five models learns as well as the same head trained in Keras."""

from __future__ import annotations

import keras
import numpy as np

from tests.converter.helpers import mlp_head
from tfltransfer import heads, optimizers

CLASSES = 3


def tinted_images(n: int, rng: np.random.Generator, noise: float) -> tuple:
    """Textured images whose class is a faint colour cast, under random brightness and noise."""
    labels = rng.integers(0, CLASSES, n)
    images = np.empty((n, 32, 32, 3), np.float32)
    for i, label in enumerate(labels):
        base = rng.uniform(0.2, 0.8) + rng.normal(0, noise, (32, 32, 1))
        cast = np.zeros(3, np.float32)
        cast[label] = rng.uniform(0.06, 0.25)
        images[i] = np.clip(base + cast + rng.normal(0, noise / 2, (32, 32, 3)), 0, 1)
    return images, labels


def seed_batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The seed's batching: shuffle, batches of min(batch, n), the last overlapping."""
    order = rng.permutation(n)
    size = min(batch, n)
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    return [order[s : s + size] for s in starts]


def test_runtime_training_matches_keras_accuracy(build_bundle):
    rng = np.random.default_rng(0)
    model = mlp_head(CLASSES, l2=0.001, seed=11)
    initial = model.get_weights()
    bundle = build_bundle(
        heads.KerasModelHead(model),
        optimizers.Adam(learning_rate=0.003),
        batch=10,
        verify=False,
    )
    train_x, train_y = tinted_images(240, rng, noise=0.3)
    test_x, test_y = tinted_images(300, rng, noise=0.3)
    features = lambda images: np.concatenate([bundle.bottleneck(i[None]) for i in images])  # noqa: E731
    f_train, f_test = features(train_x), features(test_x)
    onehot = np.eye(CLASSES, dtype=np.float32)[train_y]

    params, state = bundle.initialize(), bundle.initial_state()
    keras_model = mlp_head(CLASSES, l2=0.001, seed=11)
    keras_model.set_weights(initial)
    keras_model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.Adam(0.003, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
    )
    losses = []
    for _epoch in range(25):
        epoch_losses = []
        for idx in seed_batches(len(f_train), 10, rng):
            loss, grads = bundle.train_head(f_train[idx], onehot[idx], params)
            params, state = bundle.optimizer(params, grads, state)
            keras_model.train_on_batch(f_train[idx], onehot[idx])
            epoch_losses.append(loss)
        losses.append(np.mean(epoch_losses))
    assert losses[-1] < losses[0] / 3

    ours = np.mean([bundle.probabilities(f[None], params).argmax() for f in f_test] == test_y)
    theirs = np.mean(keras_model.predict(f_test, verbose=0).argmax(1) == test_y)
    print(f"held-out accuracy: runtime models {ours:.3f}, Keras {theirs:.3f}")
    assert ours > 0.6  # well above chance (0.33): the task is learnable but not trivial
    assert abs(ours - theirs) <= 0.02
