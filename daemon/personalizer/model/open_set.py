"""Open-set recognition: is this frame one of the taught classes at all?

A softmax head answers with one of its classes for anything, so its confidence cannot say "none
of these". How like a frame is to each class's samples can, when it is measured in the right
space and against the right yardstick.

**The space.** A bottleneck is average-pooled over its positions (a 7x7x1280 one becomes 1280
numbers; a pooled one stays as it is) and scaled to unit length. On the raw spatial bottleneck,
two shots of one object from different angles put its parts at other positions and look barely
more alike than two different objects (cosine ~0.45 against ~0.2), while near-identical shots
score 0.98: how alike a class's own shots are depends more on how they were taken than on what
they show. Pooled, shots of one object score ~0.8 from different angles and ~0.99 when still,
other objects ~0.4, on every bundle kind alike. A class is the unit mean of its samples' pooled
features (its *prototype*); a frame's similarity to a class is the cosine to that prototype.

**The yardstick, per class.** Each class c gets its own threshold from two measurements on the
samples:

- ``P_c``, how alike new shots of c are to c: the :data:`POSITIVE_QUANTILE` of its samples'
  leave-one-out similarities (each sample against the prototype of the *other* samples of c);
- ``N_c``, how alike other things get to c: the largest (:data:`NEGATIVE_QUANTILE`) similarity
  of another class's sample to c's prototype. An object never taught is, to c, one more "other
  thing": it tends to lie where the other classes' samples lie.

The threshold sits :data:`WEIGHT` of the way from ``N_c`` up to ``P_c``, so it adapts both to a
class whose shots vary a lot and to a class with a close neighbour. It is bounded so that no
sample set can turn it against its own class: at most ``P_c -`` :data:`MIN_GAP` (near-identical
shots of a still object give ``P_c`` close to 1, and a frame a little different from them is
still that object; the old single threshold rose to ~1.0 there and the class rejected its own
photo), and ``N_c`` is never taken below :data:`NEGATIVE_FLOOR` (the low end of unrelated
objects' similarity in this space), so one very different other class cannot lower the
threshold to where anything passes. What is not measured yet comes from the other classes or a
prior: a class with one sample takes the median ``P`` of the classes that have more (else
:data:`PRIOR_POSITIVE`, the typical ``P`` of 5 varied shots), and a class alone has ``N`` =
:data:`NEGATIVE_FLOOR`.

A frame is known when it is above the threshold of at least one class; its *margin* (similarity
less threshold, best class) is the score behind the decision.

**The figures that chose it** (``make eval``'s trials on the scikit-image and OpenCV photos only;
the Tux Paint and wallpaper photos were kept out of every choice; swept with 4 sample sets per
setting). Taught right / untaught -> unknown, mean over the four bundle kinds, 4 classes of 5
varied shots unless said; "camera conditions" is the mean over the eight of them:

| variant | 5 shots | 2 classes | 16 classes | camera conditions |
|---|---|---|---|---|
| before (224 spatial; 5 identical shots: 0.00 right) | 1.00 / 0.32 | | | |
| pooled, square root, WEIGHT 0.35 | 0.99 / 0.93 | 0.99 / 0.92 | 0.99 / 0.94 | 0.86 / 0.96 |
| pooled, WEIGHT 0.25 | 0.99 / 0.93 | 0.99 / 0.92 | 0.99 / 0.93 | 0.87 / 0.94 |
| pooled, WEIGHT 0.30 | 0.99 / 0.95 | 0.99 / 0.94 | 0.99 / 0.94 | 0.86 / 0.96 |
| **pooled, WEIGHT 0.35** | 0.99 / 0.97 | 0.99 / 0.95 | 0.99 / 0.95 | 0.84 / 0.98 |
| pooled, WEIGHT 0.35, N: 90% quantile | 0.99 / 0.95 | 0.99 / 0.95 | 0.99 / 0.86 | 0.86 / 0.97 |

The square root (a power transform common in few-shot learning) bought nothing here; WEIGHT
trades recall under bad light, blur and night-vision frames against untaught objects taken for
taught ones, and 0.35 is the lowest that kept untaught -> unknown at 0.95 or more with 2 and 16
classes. NEGATIVE_FLOOR (0 or 0.35) and POSITIVE_QUANTILE (0 or 0.1) moved no figure by more
than 0.02. docs/eval.md has the full tables, the evaluation-only photos included.

Cost: class prototypes come from the sample store's running sums (pooling is linear, so a
class's pooled mean is the pool of its summed bottlenecks over its count: O(classes x
features)); the calibration pools at most :data:`MAX_PER_CLASS` samples per class, so it stays
bounded however many samples there are, and the model measures it again only when the samples
changed enough (``samples.Measured``; in between, :func:`recentred` only follows the
prototypes). A frame costs one sum of its bottleneck over the positions, one norm and one
(classes x channels) product in float32: 25 us with 16 classes on a 7x7x1280 bottleneck, 0.008
of the 224 px base model's invoke (3.2 ms) on the 2-core x86 development machine (``make bench``,
section 19; the old test's flattened product took 0.06).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .pooled import unit

POSITIVE_QUANTILE = 0.1
NEGATIVE_QUANTILE = 1.0
WEIGHT = 0.35
MIN_GAP = 0.05
NEGATIVE_FLOOR = 0.35
PRIOR_POSITIVE = 0.8
MAX_PER_CLASS = 64


@dataclass(frozen=True)
class Calibration:
    """The open-set test as measured on the samples.

    ``channels`` is the length of one position's feature vector (the bottleneck's last axis):
    bottlenecks are pooled over the positions before they are compared.
    """

    thresholds: np.ndarray  # (slots,) float64: similarity below which a frame is not that class
    positives: np.ndarray  # (slots,) P_c (see the module doc); nan for slots without samples
    negatives: np.ndarray  # (slots,) N_c
    similarities: tuple[float, ...]  # the leave-one-out similarities P_c came from
    similarity_slots: tuple[int, ...]  # the class slot of each of them
    unit_means: np.ndarray  # (slots, channels) float32 prototypes, zero rows for empty slots
    present: np.ndarray  # (slots,) bool: slots with samples
    channels: int
    # Derived, for the per-frame test: the present slots' prototypes and thresholds as compact
    # float32 arrays, so a frame costs one pooling, one norm and one small product.
    _slots: np.ndarray = field(init=False, repr=False, compare=False)
    _rows: np.ndarray = field(init=False, repr=False, compare=False)
    _row_thresholds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slots = np.flatnonzero(self.present)
        object.__setattr__(self, "_slots", slots)
        object.__setattr__(
            self, "_rows", np.ascontiguousarray(self.unit_means[slots], dtype=np.float32)
        )
        object.__setattr__(self, "_row_thresholds", self.thresholds[slots].astype(np.float32))

    @property
    def threshold(self) -> float:
        """The lowest threshold of a class with samples (the most lenient; for display)."""
        if not self.present.any():
            return 1.0
        return float(np.min(self.thresholds[self.present]))

    @property
    def calibrated(self) -> bool:
        """False while no class has two samples (priors stand in for the measurements)."""
        return bool(self.similarities)

    @property
    def rejected_share(self) -> float | None:
        """Share of the leave-one-out samples their own class's threshold would call unknown."""
        if not self.similarities:
            return None
        own = self.thresholds[np.asarray(self.similarity_slots, dtype=np.int64)]
        return float(np.mean(np.asarray(self.similarities) < own))

    def _present_similarities(self, bottleneck: np.ndarray) -> np.ndarray | None:
        """Cosine to each present slot's prototype (None: an all-zero or non-finite frame).

        The frame is summed over its positions, not averaged: a cosine does not see the scale.
        """
        x = np.asarray(bottleneck, dtype=np.float32).reshape(-1, self.channels)
        with np.errstate(all="ignore"):
            pooled = x.sum(axis=0)
            norm = math.sqrt(float(np.dot(pooled, pooled)))
            if not (norm > 0.0 and math.isfinite(norm)):
                return None
            return (self._rows @ pooled) / np.float32(norm)

    def best_margins(self, bottlenecks: np.ndarray) -> np.ndarray:
        """The best class's margin (similarity less threshold: >= 0 is known, larger is surer)
        of each of a batch (n, ...) of bottlenecks, with the arithmetic of :meth:`test` (for
        evaluations)."""
        n = len(bottlenecks)
        if not len(self._slots):
            return np.full(n, -np.inf)
        x = np.asarray(bottlenecks, dtype=np.float32).reshape(n, -1, self.channels)
        with np.errstate(all="ignore"):
            pooled = x.sum(axis=1)
            norms = np.sqrt(np.einsum("ij,ij->i", pooled, pooled).astype(np.float64))
            sims = (pooled @ self._rows.T) / norms[:, None].astype(np.float32)
        ok = np.isfinite(norms) & (norms > 0)
        best = (sims - self._row_thresholds).max(axis=1).astype(np.float64)
        return np.where(ok, best, -np.inf)

    def test(self, bottleneck: np.ndarray) -> tuple[bool, float, int | None]:
        """Whether ``bottleneck`` is close enough to a taught class; its similarity to the class
        whose threshold it comes nearest to passing, and that class's slot (None, with 0.0:
        no class has samples, or the frame has no features)."""
        if not len(self._slots):
            return False, 0.0, None
        sims = self._present_similarities(bottleneck)
        if sims is None:
            return False, 0.0, None
        margins = sims - self._row_thresholds
        best = int(np.argmax(margins))
        return bool(margins[best] >= 0.0), float(sims[best]), int(self._slots[best])

    def is_known(self, bottleneck: np.ndarray) -> tuple[bool, float]:
        """:meth:`test` without the slot."""
        known, similarity, _ = self.test(bottleneck)
        return known, similarity


POOL_CHUNK = 32  # bottlenecks pooled at once: 32 7x7x1280 rows are 8 MB in float32


def _pooled(bottlenecks: np.ndarray, channels: int) -> np.ndarray:
    """(n, ...) -> (n, channels) float64 averages over the positions (not normalised)."""
    x = np.asarray(bottlenecks, dtype=np.float32).reshape(len(bottlenecks), -1, channels)
    with np.errstate(all="ignore"):
        return x.mean(axis=1, dtype=np.float64)


def _pooled_rows(bottlenecks: Sequence[np.ndarray], index: np.ndarray, channels: int):
    """The pooled rows of ``bottlenecks[index]``, POOL_CHUNK at a time (never one float32 stack
    of all the samples: 1024 7x7x1280 samples would be 250 MB)."""
    out = np.zeros((len(index), channels), dtype=np.float64)
    for begin in range(0, len(index), POOL_CHUNK):
        part = index[begin : begin + POOL_CHUNK]
        out[begin : begin + len(part)] = _pooled(
            np.stack([np.asarray(bottlenecks[i]) for i in part]), channels
        )
    return out


def prototypes(
    sums: np.ndarray, counts: np.ndarray, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit prototypes (slots, channels) from per-slot sums of raw bottlenecks, and presence.

    The pooled mean of a class is the pool of its summed bottlenecks divided by its count
    (pooling is linear); its direction is the class's prototype.
    """
    present = np.asarray(counts) > 0
    slots = len(counts)
    means = np.zeros((slots, channels), dtype=np.float64)
    if present.any():
        pooled = np.asarray(sums, dtype=np.float64)[present].reshape(
            int(present.sum()), -1, channels
        )
        means[present] = pooled.mean(axis=1) / np.asarray(counts)[present, None]
    return unit(means).astype(np.float32), present


def _channels(shape: Sequence[int] | None, bottlenecks: Sequence[np.ndarray], sums: np.ndarray):
    if shape is not None and len(shape):
        return int(shape[-1])
    if len(bottlenecks):
        return int(np.shape(bottlenecks[0])[-1])
    return int(np.shape(sums)[-1])


def recentred(calibration: Calibration, sums: np.ndarray, counts: np.ndarray) -> Calibration:
    """``calibration``'s thresholds with the prototypes of ``sums``/``counts`` (after new
    samples that did not call for measuring again: ``samples.Measured``)."""
    unit_means, present = prototypes(sums, counts, calibration.channels)
    thresholds = calibration.thresholds.copy()
    # A slot that gained its first sample since: the prior, until it is measured.
    new = present & ~np.isfinite(thresholds)
    thresholds[new] = _bounded(np.array([PRIOR_POSITIVE]), np.array([NEGATIVE_FLOOR]))[0]
    return Calibration(
        thresholds,
        calibration.positives,
        calibration.negatives,
        calibration.similarities,
        calibration.similarity_slots,
        unit_means,
        present,
        calibration.channels,
    )


def _bounded(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    negatives = np.maximum(negatives, NEGATIVE_FLOOR)
    between = negatives + WEIGHT * (positives - negatives)
    return np.minimum(between, positives - MIN_GAP)


def calibrate(
    bottlenecks: Sequence[np.ndarray],
    labels: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    rng: np.random.Generator | None = None,
    shape: Sequence[int] | None = None,
) -> Calibration:
    """Measure the per-class thresholds on the samples (see the module doc).

    ``sums``/``counts`` are the per-slot sums (of the flattened bottlenecks) and counts of
    ``bottlenecks`` (the sample store keeps them; slots the model does not use must have count
    0); ``shape`` is the bundle's bottleneck shape (its last axis is pooled over the others):
    the model passes it, so that a store of flat rows works too; without it, the samples' own
    shape is used. Thresholds depend on every class's samples (each class's are the others'
    negatives), so a change of the classes calls for a new calibration, not :func:`recentred`.
    """
    rng = rng or np.random.default_rng(0)
    counts = np.asarray(counts)
    labels = np.asarray(labels)
    channels = _channels(shape, bottlenecks, sums)
    unit_means, present = prototypes(sums, counts, channels)
    slots = len(counts)
    positives = np.full(slots, np.nan)
    negatives = np.full(slots, np.nan)
    # Pool at most MAX_PER_CLASS samples of each class once; all measurements use these.
    chosen: list[np.ndarray] = []
    for slot in np.flatnonzero(present):
        members = np.flatnonzero(labels == slot)
        if len(members) > MAX_PER_CLASS:
            members = np.sort(rng.choice(members, MAX_PER_CLASS, replace=False))
        chosen.append(members)
    index = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    pooled = _pooled_rows(bottlenecks, index, channels)
    features = unit(pooled)
    own = labels[index] if len(index) else np.zeros(0, dtype=np.int64)
    with np.errstate(all="ignore"):
        to_prototypes = features @ unit_means.T.astype(np.float64)
    similarities: list[float] = []
    owners: list[int] = []
    for slot in np.flatnonzero(present):
        mine = own == slot
        if mine.sum() >= 2:
            loo = _leave_one_out(pooled[mine])
            similarities.extend(loo.tolist())
            owners.extend([int(slot)] * len(loo))
            positives[slot] = np.quantile(loo, POSITIVE_QUANTILE)
        others = to_prototypes[~mine, slot]
        others = others[np.isfinite(others)]
        if len(others):
            negatives[slot] = np.quantile(others, NEGATIVE_QUANTILE)
    measured = np.isfinite(positives)
    fallback = float(np.median(positives[measured])) if measured.any() else PRIOR_POSITIVE
    positives[present & ~measured] = fallback
    negatives[present & ~np.isfinite(negatives)] = NEGATIVE_FLOOR
    thresholds = np.full(slots, np.inf)
    thresholds[present] = _bounded(positives[present], negatives[present])
    return Calibration(
        thresholds,
        positives,
        negatives,
        tuple(similarities),
        tuple(owners),
        unit_means,
        present,
        channels,
    )


def _leave_one_out(pooled: np.ndarray) -> np.ndarray:
    """Each pooled row's cosine to the mean of the other rows: to the prototype the class would
    have without it (prototypes are means of the pooled rows, as the store's sums give them)."""
    rest = pooled.sum(axis=0)[None, :] - pooled
    with np.errstate(all="ignore"):
        return np.sum(unit(pooled) * unit(rest), axis=1)
