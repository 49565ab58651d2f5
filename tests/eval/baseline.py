"""The open-set test before issue 19 (a frozen copy, so `make eval` compares against it).

Original doc follows.

Open-set recognition: is this frame one of the taught classes at all?

A softmax head answers with one of its classes for anything, and confidently so far from its
training data, so its confidence cannot tell "none of these". The distance to the taught samples
in bottleneck space can: a frame of a taught class points the same way as that class's mean
bottleneck (cosine similarity), an object never taught does not.

How close is close enough is measured on the board's own samples, leave-one-out: each sample's
similarity to the mean of *the other* samples of its class is what a new frame of that class
can expect. The threshold sits below those similarities (:data:`QUANTILE` of them, less
:data:`SPREAD` of their standard deviation), so new shots of a class pass and other objects,
which are much further away, do not. Until some class has two samples there is nothing to
measure, and :data:`UNCALIBRATED_THRESHOLD` is used.

Cost: class means come from the sample store's running sums (O(classes x features)); the
calibration uses at most :data:`MAX_PER_CLASS` samples per class, so it stays bounded however
many samples there are, and the model measures it again only when the samples changed enough
(``samples.Measured``; in between, :func:`recentred` only follows the class means); a frame
costs one (classes x features) product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

QUANTILE = 0.02
SPREAD = 1.5
MAX_PER_CLASS = 64
UNCALIBRATED_THRESHOLD = 0.5


@dataclass(frozen=True)
class Calibration:
    """The open-set test as measured on the samples."""

    threshold: float  # cosine similarity to the nearest class mean below which: unknown
    similarities: tuple[float, ...]  # the leave-one-out similarities it came from
    unit_means: np.ndarray  # (slots, features) float32, zero rows for slots without samples
    present: np.ndarray  # (slots,) bool: slots with samples

    @property
    def calibrated(self) -> bool:
        """False while no class has two samples (the threshold is the default then)."""
        return bool(self.similarities)

    @property
    def rejected_share(self) -> float | None:
        """Share of the leave-one-out samples the threshold would call unknown."""
        if not self.similarities:
            return None
        return float(np.mean(np.asarray(self.similarities) < self.threshold))

    def similarity(self, bottleneck: np.ndarray) -> np.ndarray:
        """Cosine similarity of one bottleneck to every slot's mean (0 for empty slots)."""
        x = np.asarray(bottleneck, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(x))
        if norm == 0.0:
            return np.zeros(len(self.present), dtype=np.float32)
        return self.unit_means @ (x / norm)

    def is_known(self, bottleneck: np.ndarray) -> tuple[bool, float]:
        """Whether ``bottleneck`` is close enough to a taught class, and its best similarity."""
        if not self.present.any():
            return False, 0.0
        sims = self.similarity(bottleneck)
        best = float(np.max(np.where(self.present, sims, -np.inf)))
        return best >= self.threshold, best


def recentred(calibration: Calibration, sums: np.ndarray, counts: np.ndarray) -> Calibration:
    """``calibration``'s threshold with the class means of ``sums``/``counts`` (after new
    samples that did not call for measuring again: ``samples.Measured``)."""
    unit_means, present = _unit_means(sums, counts)
    return Calibration(calibration.threshold, calibration.similarities, unit_means, present)


def _unit_means(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = counts > 0
    means = np.zeros_like(sums)
    means[present] = sums[present] / counts[present, None]
    return _unit(means).astype(np.float32), present


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def calibrate(
    bottlenecks: Sequence[np.ndarray],
    labels: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    rng: np.random.Generator | None = None,
) -> Calibration:
    """Measure the open-set threshold on the samples (see the module doc).

    ``sums``/``counts`` are the per-slot sums and counts of ``bottlenecks`` (the sample store
    keeps them), so class means cost nothing extra.
    """
    rng = rng or np.random.default_rng(0)
    unit_means, present = _unit_means(sums, counts)
    similarities: list[float] = []
    labels = np.asarray(labels)
    for slot in np.flatnonzero(counts >= 2):
        members = np.flatnonzero(labels == slot)
        if len(members) > MAX_PER_CLASS:
            members = rng.choice(members, MAX_PER_CLASS, replace=False)
        n = counts[slot]
        for index in members:
            x = np.asarray(bottlenecks[index], dtype=np.float64).reshape(-1)
            rest = (sums[slot] - x) / (n - 1)
            denominator = np.linalg.norm(x) * np.linalg.norm(rest)
            if denominator > 0:
                similarities.append(float(x @ rest / denominator))
    if similarities:
        values = np.asarray(similarities)
        threshold = float(np.quantile(values, QUANTILE) - SPREAD * np.std(values))
    else:
        threshold = UNCALIBRATED_THRESHOLD
    return Calibration(threshold, tuple(similarities), unit_means, present)
