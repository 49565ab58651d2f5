"""A small, fast version of `make eval` (docs/eval.md): issue 19's targets through the model.

Real ImageNet MobileNetV2 bundles of two kinds (160 px spatial 5x5 and the quantized 224 px
spatial 7x7, the two the old method failed worst on), scikit-image's photos (the board venv has
them), shots made as the evaluation makes them (tests/eval/shots.py). Everything goes through
the model's public API: ``add_sample_bottleneck``, ``initialize_from_samples``,
``classify_bottleneck``, so the figures are the board's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personalizer.model import open_set
from tests.eval import shots
from tests.eval.embeddings import BUNDLES, CAPACITY
from tests.eval.sources import SOURCES_BY_NAME
from tests.support.bundles import build_bundle

KINDS = [kind for kind in BUNDLES if kind.label in ("160 spatial 5x5", "224 spatial int8")]
TAUGHT = ((0, 1, 2, 3), (4, 5, 6, 7), (1, 3, 4, 6))  # three choices of 4 of the 8 objects
SHOTS, HELD_OUT = 5, 4


@pytest.fixture(scope="module")
def objects():
    return SOURCES_BY_NAME["skimage"].objects()


@pytest.fixture(scope="module", params=KINDS, ids=lambda kind: kind.label.replace(" ", "-"))
def embedded(request, make_model, objects):
    """(model factory for this bundle, varied samples, held-out frames, still frames), embedded
    once per bundle kind."""
    bundle: Path = build_bundle(request.param.spec)
    model = make_model(bundle)
    varied = [[model.bottleneck(shots.varied(o, i)) for i in range(SHOTS)] for o in objects]
    held_out = [
        [model.bottleneck(shots.varied(o, 100 + i)) for i in range(HELD_OUT)] for o in objects
    ]
    still = [[model.bottleneck(shots.still(o, i)) for i in range(HELD_OUT)] for o in objects]
    return (lambda: make_model(bundle)), varied, held_out, still


def _taught(make, samples, taught, names):
    model = make()
    for slot, obj in enumerate(taught):
        for bottleneck in samples[obj]:
            model.add_sample_bottleneck(bottleneck, names[slot])
    model.initialize_from_samples()
    return model


def test_untaught_objects_are_unknown_and_taught_ones_right(embedded, objects) -> None:
    make, varied, held_out, _ = embedded
    names = [f"c{i:02d}" for i in range(CAPACITY)]
    right = taught_total = unknown = untaught_total = 0
    for taught in TAUGHT:
        model = _taught(make, varied, taught, names)
        for obj in range(len(objects)):
            for frame in held_out[obj]:
                result = model.classify_bottleneck(frame, "unknown")
                if obj in taught:
                    taught_total += 1
                    right += result.known and result.class_name == names[taught.index(obj)]
                else:
                    untaught_total += 1
                    unknown += not result.known
    right_rate, unknown_rate = right / taught_total, unknown / untaught_total
    print(f"\ntaught right {right_rate:.3f}, untaught unknown {unknown_rate:.3f}")
    assert right_rate >= 0.95
    assert unknown_rate >= 0.90


def test_identical_shots_of_a_still_object_are_recognised(embedded, objects) -> None:
    """The demo's case: every sample the very same frame (threshold ~1.0 before issue 19)."""
    make, _, _, still = embedded
    names = [f"c{i:02d}" for i in range(CAPACITY)]
    taught = TAUGHT[0]
    identical = [[frames[0]] * SHOTS for frames in still]
    model = _taught(make, identical, taught, names)
    results = [
        (slot, model.classify_bottleneck(frame, "unknown"))
        for slot, obj in enumerate(taught)
        for frame in still[obj]  # the sample's own frame first, then the still scene again
    ]
    wrong = [(names[slot], r.class_name) for slot, r in results if r.class_name != names[slot]]
    assert not wrong, f"a still object's own frames were not recognised: {wrong}"


def test_near_duplicate_samples_never_push_their_class_out() -> None:
    rng = np.random.default_rng(0)
    shape = (5, 5, 64)
    centre = rng.random(shape).astype(np.float32)
    other = rng.random(shape).astype(np.float32)
    samples = [centre.astype(np.float16)] * 10 + [
        (other * rng.uniform(0.8, 1.2, shape)).astype(np.float16) for _ in range(10)
    ]
    labels = np.repeat([0, 1], 10)
    flat = np.stack([s.reshape(-1).astype(np.float64) for s in samples])
    sums = np.stack([flat[labels == c].sum(axis=0) for c in (0, 1)])
    calibration = open_set.calibrate(samples, labels, sums, np.array([10, 10]), shape=shape)
    assert calibration.thresholds[0] <= calibration.positives[0] - open_set.MIN_GAP
    assert calibration.is_known(centre)[0]
    assert calibration.is_known(centre * 0.97 + 0.03 * rng.random(shape))[0]
    assert calibration.rejected_share == 0.0
