"""Training through the runtime learns as well as the same head trained in Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.bundles import SUPPORT, run_converter_python
from tests.support.synthetic_images import colour_image

TRAIN_PER_CLASS, TEST_PER_CLASS, EPOCHS, BATCH = 60, 200, 80, 20
# Hue noise makes neighbouring classes overlap, so neither reaches 100% and the comparison means
# something (held-out accuracy is about 85%).
HUE_NOISE = 0.3


@pytest.mark.slow
def test_runtime_training_matches_keras_on_the_same_bottlenecks(model, tmp_path) -> None:
    rng = np.random.default_rng(2024)
    classes = model.classes

    def frames(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(4), per_class)
        x = np.stack([model.bottleneck(colour_image(c, rng, hue_noise=HUE_NOISE)) for c in labels])
        return x, labels

    train_x, train_y = frames(TRAIN_PER_CLASS)
    test_x, test_y = frames(TEST_PER_CLASS)
    kernel, bias = model.parameters()
    hp = model.bundle.manifest.optimizer.hyperparameters
    data = tmp_path / "bottlenecks.npz"
    np.savez(
        data,
        train_x=train_x,
        train_y=np.eye(4, dtype=np.float32)[train_y],
        test_x=test_x,
        test_y=test_y,
        kernel=kernel,
        bias=bias,
        adam=np.array([hp["learning_rate"], hp["beta1"], hp["beta2"], hp["eps"]]),
    )
    out = run_converter_python(
        [str(SUPPORT / "tf_keras_reference.py"), str(data), str(EPOCHS), str(BATCH), "0"],
        what="training the Keras reference head",
    )
    keras_result = json.loads(out.strip().splitlines()[-1])

    for x, label in zip(train_x, train_y, strict=True):
        model.add_sample_bottleneck(x, classes[label])
    model.train(EPOCHS)
    predicted = [classes.index(model.predict_bottleneck(x)[0].class_name) for x in test_x]
    accuracy = float(np.mean(np.array(predicted) == test_y))

    assert accuracy > 0.6, f"the runtime did not learn: {accuracy:.3f} held-out accuracy"
    assert keras_result["accuracy"] < 0.99, "the data set is too easy to compare anything"
    assert abs(accuracy - keras_result["accuracy"]) <= 0.02, (accuracy, keras_result)
