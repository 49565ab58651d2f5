"""Builtin-only bundles contain no Flex op; other heads fall back to Flex and say so."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.converter.helpers import TINY_BOTTLENECK, mlp_head, softmax_head
from tfltransfer import heads, tflite_model_info

MODELS = ("initialize", "bottleneck", "train_head", "inference", "optimizer")


def flex_ops_in(bundle) -> dict[str, list[str]]:
    """Ops read from each flatbuffer, not from the manifest."""
    found = {}
    for name in MODELS:
        ops = tflite_model_info.op_names((bundle.path / f"{name}.tflite").read_bytes())
        assert ops == bundle.manifest["models"][name]["ops"]
        found[name] = [op for op in ops if op.startswith("Flex")]
    return found


@pytest.mark.parametrize(
    "make_head",
    [lambda: softmax_head(), lambda: heads.KerasModelHead(mlp_head())],
    ids=["softmax", "mlp"],
)
def test_builtin_heads_have_no_flex_op(build_bundle, make_head):
    bundle = build_bundle(make_head())
    assert flex_ops_in(bundle) == {name: [] for name in MODELS}
    assert bundle.manifest["requires_flex"] is False


def test_seed_readme_keras_head_is_builtin_only(build_bundle):
    """The seed README's head (Flatten, Dense(32, relu, l2), Dense(4, softmax, l2))."""
    from tensorflow.keras import layers
    from tensorflow.keras.regularizers import l2

    head = keras.Sequential(
        [
            layers.Input(TINY_BOTTLENECK),
            layers.Flatten(),
            layers.Dense(
                32,
                activation="relu",
                kernel_regularizer=l2(0.01),
                bias_regularizer=l2(0.01),
            ),
            layers.Dense(
                4,
                activation="softmax",
                kernel_regularizer=l2(0.01),
                bias_regularizer=l2(0.01),
            ),
        ]
    )
    head.compile(loss="categorical_crossentropy", optimizer="sgd")
    bundle = build_bundle(heads.KerasModelHead(head), num_classes=4)
    assert flex_ops_in(bundle) == {name: [] for name in MODELS}


def test_unsupported_head_falls_back_to_flex_and_is_flagged(build_bundle):
    model = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    bundle = build_bundle(heads.KerasModelHead(model))
    manifest = bundle.manifest
    assert manifest["requires_flex"] is True
    assert manifest["models"]["train_head"]["requires_flex"] is True
    assert "Conv2D" in manifest["head"]["flex_reason"]
    assert any(ops for ops in flex_ops_in(bundle).values())


def test_saved_model_head_converts_with_its_variables_as_parameters(build_bundle, tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    model.export(str(tmp_path / "head"), verbose=False)
    for cls in (heads.SavedModelHead, heads.LogitsSavedModelHead):
        head = cls(tmp_path / "head")
        bundle = build_bundle(head)  # the self-check compares gradients with TensorFlow's
        params = bundle.initialize()
        for got, expected in zip(params, model.get_weights(), strict=True):
            np.testing.assert_array_equal(got, expected)
        x = np.random.default_rng(0).uniform(size=(1, *TINY_BOTTLENECK)).astype(np.float32)
        logits = np.asarray(model(x))
        expected = np.exp(logits) / np.exp(logits).sum()
        np.testing.assert_allclose(bundle.probabilities(x, params), expected, rtol=1e-4)
        assert bundle.manifest["head"]["output"] == "logits"
