"""The validation estimate: cross-validated on the board's samples, never on a sample itself."""

from __future__ import annotations

import numpy as np

from tests.support.synthetic_images import colour_image


def _teach(model, labels: list[int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i, label in enumerate(labels):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[label])


def test_a_learnable_task_scores_high(model) -> None:
    _teach(model, [i % 4 for i in range(40)])
    model.train(10)
    evaluation = model.evaluate()
    assert evaluation.folds == 5 and evaluation.samples == 40 and evaluation.epochs == 10
    assert evaluation.accuracy >= 0.75, evaluation  # random weights: colours, roughly
    assert set(evaluation.recall) == {0, 1, 2, 3}
    assert sum(sum(row.values()) for row in evaluation.confusion.values()) == 40


def test_nothing_leaks_labels_without_meaning_score_at_chance(model) -> None:
    # The same images, labelled at random: a held-out sample's label cannot be learnt from the
    # others, so only a sample that leaked into its own training set could be right often.
    labels = np.random.default_rng(3).permutation([i % 4 for i in range(40)]).tolist()
    _teach(model, labels)
    model.train(10)
    evaluation = model.evaluate()
    assert evaluation.accuracy is not None and evaluation.accuracy <= 0.5, evaluation


def test_too_few_samples_give_no_estimate(model) -> None:
    _teach(model, [0, 1, 2])  # one sample per class: nothing can be held out
    evaluation = model.evaluate()
    assert evaluation.accuracy is None and evaluation.folds == 0
    assert "not enough samples" in evaluation.method
