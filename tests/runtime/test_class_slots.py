"""Classes on the board: a bundle's num_classes is its capacity; empty slots are masked."""

from __future__ import annotations

import numpy as np
import pytest

from personalizer import ClassListError, UnknownClassError
from tests.support.synthetic_images import colour_image


def _teach(model, counts: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    colours = {name: i for i, name in enumerate(model.classes)}
    for name, count in counts.items():
        for _ in range(count):
            model.add_sample(colour_image(colours[name] % 4, rng), name)


def _class_columns(model, slots):
    """The output layer's columns of ``slots`` (kernel and bias)."""
    *_, kernel, bias = model.parameters()
    return kernel[..., slots].copy(), bias[slots].copy()


@pytest.mark.parametrize("head", ["softmax", "mlp"])
def test_empty_slots_are_never_predicted_and_never_trained(make_model, bundle, mlp_bundle, head):
    bundle = bundle if head == "softmax" else mlp_bundle
    model = make_model(bundle, ["red", "green", "blue"])  # 3 of the 4 slots
    assert model.capacity == 4 and model.classes == ("red", "green", "blue")
    _teach(model, {"red": 6, "green": 6})  # "blue" has no samples yet
    before = _class_columns(model, [2, 3])
    model.train(15)
    after = _class_columns(model, [2, 3])
    for was, now in zip(before, after, strict=True):
        np.testing.assert_array_equal(now, was)  # no gradient reached them
    rng = np.random.default_rng(5)
    for colour in range(4):
        ranked = model.predict(colour_image(colour, rng))
        assert [p.class_name for p in ranked[:2]] != []
        scores = {p.class_name: p.confidence for p in ranked}
        assert set(scores) == {"red", "green", "blue"} and scores["blue"] == 0.0
        assert scores["red"] + scores["green"] == pytest.approx(1.0, abs=1e-5)


def test_a_class_added_later_is_learnt_without_reconverting(make_model, bundle):
    model = make_model(bundle, ["red", "green"])
    _teach(model, {"red": 6, "green": 6})
    model.train(10)
    assert model.add_class("blue") == 2
    _teach(model, {"blue": 6}, seed=1)
    model.train(30)
    rng = np.random.default_rng(9)
    assert model.predict(colour_image(2, rng))[0].class_name == "blue"
    assert model.predict(colour_image(0, rng))[0].class_name == "red"


def test_rename_keeps_and_remove_frees_the_slot(make_model, bundle):
    model = make_model(bundle, ["red", "green", "blue", "grey"])
    _teach(model, {"red": 3, "green": 3, "blue": 3})
    model.train(5)
    initial_kernel, initial_bias = model._head.initial[0][:, 1], model._head.initial[1][1]
    model.rename_class("green", "lime")
    assert model.samples() == {"red": 3, "lime": 3, "blue": 3, "grey": 0}
    assert model.remove_class("lime") == 3
    assert model.class_slots() == {0: "red", 2: "blue", 3: "grey"}
    kernel, bias = model.parameters()
    np.testing.assert_array_equal(kernel[:, 1], initial_kernel)  # the freed slot starts over
    assert bias[1] == initial_bias
    assert model.add_class("teal") == 1
    assert model.samples()["teal"] == 0


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda m: m.add_class("red"), ClassListError, "exists already"),
        (lambda m: m.add_class(" pad"), ClassListError, "not a usable class name"),
        (lambda m: (m.add_class("x"), m.add_class("y")), ClassListError, "room for 4 classes"),
        (lambda m: m.rename_class("nope", "x"), UnknownClassError, 'unknown class "nope"'),
        (lambda m: m.rename_class("red", "green"), ClassListError, "exists already"),
        (lambda m: m.remove_class("nope"), UnknownClassError, "unknown class"),
    ],
    ids=["duplicate", "bad-name", "full", "rename-unknown", "rename-taken", "remove-unknown"],
)
def test_class_changes_that_cannot_be_made_are_refused(make_model, bundle, action, error, message):
    model = make_model(bundle, ["red", "green", "blue"])
    with pytest.raises(error, match=message):
        action(model)
