"""Statistics measured on the samples (imprinting scale, open-set threshold) are measured again
when the samples changed enough, not at every new sample, and always after an edit."""

from __future__ import annotations

import numpy as np

from personalizer.model.samples import REMEASURE_GROWTH, SampleSet
from tests.support.synthetic_images import colour_image


def _row(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 6, 16).astype(np.float32)


def test_a_measurement_stands_until_the_samples_grow_by_a_quarter_or_are_edited() -> None:
    store = SampleSet(num_slots=3, features=16)
    ids = [store.add(_row(i), i % 2) for i in range(8)]
    taken = store.measured()
    assert taken.count == 8 and taken.slots == (0, 1)
    store.add(_row(8), 0)
    assert taken.still_fits(store.measured()), "one more sample of a known class"
    while store.measured().count < 8 * REMEASURE_GROWTH:
        store.add(_row(store.measured().count), 1)
    assert not taken.still_fits(store.measured()), "grown by a quarter"

    for edit in (
        lambda: store.relabel(ids[0], 1),
        lambda: store.remove(ids[1]),
        lambda: store.add(_row(99), 2),  # a class gets its first sample
        lambda: store.clear(2),
    ):
        taken = store.measured()
        edit()
        assert not taken.still_fits(store.measured())
    assert store.measured(slots=[1]).slots == (1,)


def test_the_open_set_test_follows_new_samples_and_is_measured_again_after_an_edit(model) -> None:
    rng = np.random.default_rng(0)
    ids = [model.add_sample(colour_image(c, rng), "ABCD"[c]) for c in (0, 1) for _ in range(6)]
    first = model.open_set()
    assert first.calibrated
    model.add_sample(colour_image(0, rng), "A")
    followed = model.open_set()
    assert (followed.threshold, followed.similarities) == (first.threshold, first.similarities)
    assert not np.array_equal(followed.unit_means, first.unit_means), "the new class means"

    assert model.remove_sample(ids[0]) == "A"
    again = model.open_set()
    assert again.similarities != first.similarities, "measured again after a removal"
    assert len(again.similarities) == 6 + 6
