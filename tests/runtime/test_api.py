"""The TransferLearningModel API: classes, samples, predictions, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from personalizer import (
    ClassListError,
    ImageFormatError,
    Prediction,
    UnknownClassError,
)
from tests.support.synthetic_images import colour_image


def test_classes_default_to_the_manifest(model) -> None:
    assert model.classes == ("A", "B", "C", "D")
    assert model.input_shape == (1, 96, 96, 3)
    assert model.bottleneck_shape == (1280,)


def test_classes_can_be_renamed(make_model, bundle) -> None:
    model = make_model(bundle, ["cat", "dog", "cup", "pen"])
    model.add_sample(colour_image(0, np.random.default_rng(0)), "dog")
    assert model.samples() == {"cat": 0, "dog": 1, "cup": 0, "pen": 0}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["a", "b", "c", "d", "e"], "5 classes given .* room for 4"),
        (["a", "b", "c", "a"], r"unique, \['a'\]"),
        (["a", "b", "", "d"], "non-empty"),
        ("ABCD", "list of names"),
    ],
)
def test_class_lists_that_do_not_fit_the_bundle(make_model, bundle, classes, message):
    with pytest.raises(ClassListError, match=message):
        make_model(bundle, classes)


def test_samples_get_increasing_ids_and_are_counted(model) -> None:
    rng = np.random.default_rng(0)
    ids = [model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4]) for i in range(6)]
    assert ids == [0, 1, 2, 3, 4, 5]
    assert model.samples() == {"A": 2, "B": 2, "C": 1, "D": 1}


def test_unknown_class_is_refused_and_nothing_is_stored(model) -> None:
    with pytest.raises(UnknownClassError, match=r'"E"; the classes are A, B, C, D'):
        model.add_sample(np.zeros((10, 10, 3), np.uint8), "E")
    assert sum(model.samples().values()) == 0


def test_bad_image_is_refused_and_nothing_is_stored(model) -> None:
    with pytest.raises(ImageFormatError):
        model.add_sample(np.zeros((10, 10, 4), np.uint8), "A")
    with pytest.raises(ImageFormatError):
        model.predict(np.zeros((10, 10), np.uint8))
    assert sum(model.samples().values()) == 0


def test_bad_bottleneck_is_refused(model) -> None:
    with pytest.raises(ImageFormatError, match=r"shape \[1280\]"):
        model.predict_bottleneck(np.zeros(1000, np.float32))
    with pytest.raises(ImageFormatError, match="float"):
        model.add_sample_bottleneck(np.zeros(1280, np.int32), "A")


def test_clearing_one_class_keeps_the_others_and_the_parameters(model) -> None:
    rng = np.random.default_rng(0)
    for i in range(8):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])
    model.train(2)
    params = model.parameters()
    assert model.clear("B") == 2
    assert model.samples() == {"A": 2, "B": 0, "C": 2, "D": 2}
    assert model.parameters() is params
    with pytest.raises(UnknownClassError):
        model.clear("Z")


def test_clearing_everything_starts_over(make_model, bundle) -> None:
    model = make_model(bundle)
    initial = [p.copy() for p in model.parameters()]
    rng = np.random.default_rng(0)
    for i in range(4):
        model.add_sample(colour_image(i, rng), "ABCD"[i])
    model.train(3)
    assert model.steps == 3
    assert model.clear() == 4
    assert model.samples() == dict.fromkeys("ABCD", 0)
    assert model.steps == 0 and model.epochs == 0
    for now, before in zip(model.parameters(), initial, strict=True):
        np.testing.assert_array_equal(now, before)
    assert all(not s.any() for s in model.optimizer_state())
    next_id = model.add_sample(colour_image(0, rng), "A")
    assert next_id == 4  # ids are never reused


def test_predict_returns_every_class_highest_first(model) -> None:
    rng = np.random.default_rng(0)
    for i in range(8):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])
    model.train(5)
    predictions = model.predict(colour_image(2, rng))
    assert [type(p) for p in predictions] == [Prediction] * 4
    assert sorted(p.class_name for p in predictions) == ["A", "B", "C", "D"]
    confidences = [p.confidence for p in predictions]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-5)
    name, confidence = predictions[0]  # unpacks as (class, confidence)
    assert isinstance(name, str) and isinstance(confidence, float)


def test_bottleneck_and_predict_bottleneck_match_predict(model) -> None:
    rng = np.random.default_rng(3)
    for i in range(4):
        model.add_sample(colour_image(i, rng), "ABCD"[i])
    model.train(3)
    frame = colour_image(1, rng)
    bottleneck = model.bottleneck(frame)
    assert bottleneck.shape == (1280,) and bottleneck.dtype == np.float32
    assert model.predict_bottleneck(bottleneck) == model.predict(frame)
    assert model.predict_bottleneck(bottleneck[None]) == model.predict(frame)


def test_predictions_follow_the_parameters_after_each_update(model) -> None:
    # The inference interpreter keeps parameters between calls; it must notice every update.
    rng = np.random.default_rng(4)
    for i in range(4):
        model.add_sample(colour_image(i, rng), "ABCD"[i])
    frame_a, frame_b = (
        model.bottleneck(colour_image(0, rng)),
        model.bottleneck(colour_image(3, rng)),
    )
    seen = []
    for _ in range(3):
        model.train(1)
        first = model.predict_bottleneck(frame_a)
        assert model.predict_bottleneck(frame_b) != first  # inputs are not stale either
        assert model.predict_bottleneck(frame_a) == first
        seen.append(first)
    kernel, bias = model.parameters()
    logits = frame_a @ kernel + bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    got = {p.class_name: p.confidence for p in model.predict_bottleneck(frame_a)}
    np.testing.assert_allclose([got[c] for c in "ABCD"], expected, rtol=1e-4, atol=1e-6)
    assert seen[0] != seen[1] != seen[2]


def test_parameters_are_read_only(model) -> None:
    kernel = model.parameters()[0]
    with pytest.raises(ValueError):
        kernel[0, 0] = 1.0
