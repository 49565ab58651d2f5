"""What the open-set test costs per frame, against the base model it follows.

The budget (issue 19) is 0.02 of one base-model invoke per frame. Both are timed here in the same
process, interleaved, as medians: ``Calibration.is_known`` on the bottleneck as the interpreter
returns it (float32 with its batch axis) with 16 taught classes, and the 224 px base model's
``bottleneck()`` (preprocessing included, as on the board).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from personalizer import TransferLearningModel
from personalizer.model import open_set
from tests.eval import baseline
from tests.eval.embeddings import CAPACITY, BundleKind
from tests.support.bundles import build_bundle

BUDGET = 0.02


def _median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(kind: BundleKind, rounds: int = 5) -> dict[str, float]:
    """Seconds per frame of the base model and both open-set tests, and the ratios."""
    model = TransferLearningModel(build_bundle(kind.spec), runtime="auto", seed=0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(kind.spec.image_size,) * 2 + (3,), dtype=np.uint8)
    frame = model.bottleneck(image)[None].astype(np.float32)  # as the interpreter gives it
    shape = model.bottleneck_shape
    scales = rng.uniform(0.5, 1.5, size=(CAPACITY * 5, *shape))
    samples = [(frame[0] * scale).astype(np.float16) for scale in scales]
    labels = np.repeat(np.arange(CAPACITY), 5)
    flat = np.stack([s.reshape(-1).astype(np.float64) for s in samples])
    sums = np.zeros((CAPACITY, flat.shape[1]))
    np.add.at(sums, labels, flat)
    counts = np.bincount(labels, minlength=CAPACITY)
    new = open_set.calibrate(samples, labels, sums, counts, shape=shape)
    old = baseline.calibrate(samples, labels, sums, counts)
    base, test, old_test = [], [], []
    for _ in range(rounds):  # interleaved, so all three see the same load on the machine
        base.append(_median_seconds(lambda: model.bottleneck(image), 5))
        test.append(_median_seconds(lambda: new.is_known(frame), 200))
        old_test.append(_median_seconds(lambda: old.is_known(frame), 200))
    invoke = statistics.median(base)
    return {
        "base": invoke,
        "new": statistics.median(test),
        "baseline": statistics.median(old_test),
        "new_ratio": statistics.median(test) / invoke,
        "baseline_ratio": statistics.median(old_test) / invoke,
    }
