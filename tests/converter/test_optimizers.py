"""The optimizer models match Keras' own optimizers step by step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.converter.helpers import softmax_head
from tfltransfer import optimizers


def keras_steps(optimizer: keras.optimizers.Optimizer, params, grads_per_step) -> list:
    variables = [keras.Variable(p) for p in params]
    for grads in grads_per_step:
        optimizer.apply_gradients(
            zip([keras.ops.convert_to_tensor(g) for g in grads], variables, strict=True)
        )
    return [np.asarray(v.numpy()) for v in variables]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (optimizers.SGD(0.05), lambda: keras.optimizers.SGD(0.05)),
        (
            optimizers.Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, eps=1e-8),
            lambda: keras.optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-8),
        ),
    ],
    ids=["sgd", "adam"],
)
def test_ten_steps_match_keras(build_bundle, ours, theirs):
    bundle = build_bundle(softmax_head(), ours, verify=False)
    rng = np.random.default_rng(0)
    params = [rng.normal(size=p.shape).astype(np.float32) for p in bundle.initialize()]
    grads_per_step = [
        [rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(10)
    ]
    state = bundle.initial_state()
    ours_params = params
    for step, grads in enumerate(grads_per_step, start=1):
        ours_params, state = bundle.optimizer(ours_params, grads, state)
        expected = keras_steps(theirs(), params, grads_per_step[:step])
        for got, want in zip(ours_params, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if bundle.manifest["optimizer"]["kind"] == "adam":
        assert float(state[-1]) == 10.0  # the step count is state, carried between runs
