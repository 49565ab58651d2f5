"""Weight imprinting: a softmax head set from class means, useful before any training.

As Coral's imprinting engine does, each class's kernel column is the L2-normalised mean of that
class's (flattened) bottlenecks, and the bias is zero. The logit of class c for bottleneck x is
then ``scale * <x, m_c>``, where ``m_c`` is that unit mean: a similarity, largest for the class
whose mean points the same way as x.

Unlike Coral's models, the inference model does not normalise x, and raw similarities of
MobileNet features differ little between classes, so unit columns give near-uniform
probabilities. ``scale`` fixes that: it is chosen so that a training sample with the median
margin (its own class's logit minus the best other class's) gets :data:`TARGET_CONFIDENCE`,
i.e. ``scale = ln(TARGET_CONFIDENCE * (C - 1) / (1 - TARGET_CONFIDENCE)) / median_margin``.
Classes without samples get a zero column (logit 0).

The class means come from per-class running sums (the sample store keeps them). The scale is
measured on at most :data:`MAX_SCALE_SAMPLES` samples, :data:`SCALE_CHUNK` rows at a time in
float32 (no float64 stack of the samples), and the model measures it again only when the samples
have changed enough (``samples.Measured``); between two measurements imprinting after a new
sample costs O(classes x features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import NoSamplesError
from .numerics import finite_rows, matmul
from .samples import Measured, SampleSet, SampleSnapshot, class_sums

TARGET_CONFIDENCE = 0.9
MAX_SCALE_SAMPLES = 256
SCALE_CHUNK = 32  # rows per product: 32 7x7x1280 rows are 8 MB in float32


def imprinted_head(
    bottlenecks: Sequence[np.ndarray], labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(kernel (F, C), bias (C,))`` imprinted from the samples, both float32."""
    if not bottlenecks:
        raise NoSamplesError("imprinting needs at least one sample; add samples first")
    sums, counts = class_sums(bottlenecks, labels, num_classes)
    kernel, bias, _ = imprint(sums, counts, bottlenecks, labels)
    return kernel, bias


class Imprinted(NamedTuple):
    """An imprinted head and the scale its kernel was given."""

    kernel: np.ndarray  # (F, C) float32
    bias: np.ndarray  # (C,) float32, zeros
    scale: float


def imprint(
    sums: np.ndarray,
    counts: np.ndarray,
    bottlenecks: Sequence[np.ndarray],
    labels: np.ndarray,
    rng: np.random.Generator | None = None,
    scale: float | None = None,
) -> Imprinted:
    """The head from per-class sums and counts (C x F, C).

    ``bottlenecks``/``labels`` are the samples themselves; at most MAX_SCALE_SAMPLES of them
    set the scale, unless ``scale`` (one measured before, see ``samples.Measured``) is given.
    """
    kernel = _unit_kernel(sums, counts)
    if scale is None:
        scale = _measured_scale(kernel, bottlenecks, labels, rng)
    bias = np.zeros(len(counts), dtype=np.float32)
    return Imprinted((kernel * scale).astype(np.float32), bias, float(scale))


def _unit_kernel(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The unit class means as a (F, C) float32 kernel (zero columns for empty slots)."""
    if not counts.sum():
        raise NoSamplesError("imprinting needs at least one sample; add samples first")
    present = counts > 0
    means = np.zeros_like(sums, dtype=np.float64)
    means[present] = sums[present] / counts[present, None]
    norms = np.linalg.norm(means, axis=1)
    unit = np.divide(means, norms[:, None], out=np.zeros_like(means), where=norms[:, None] > 0)
    return np.ascontiguousarray(unit.T, dtype=np.float32)


def _measured_scale(
    kernel: np.ndarray,
    bottlenecks: Sequence[np.ndarray],
    labels: np.ndarray,
    rng: np.random.Generator | None,
) -> float:
    labels = np.asarray(labels)
    chosen = np.arange(len(labels))
    if len(chosen) > MAX_SCALE_SAMPLES:
        chosen = (rng or np.random.default_rng(0)).choice(chosen, MAX_SCALE_SAMPLES, replace=False)
    logits = np.empty((len(chosen), kernel.shape[1]), dtype=np.float32)
    for begin in range(0, len(chosen), SCALE_CHUNK):
        part = chosen[begin : begin + SCALE_CHUNK]
        rows = np.stack([np.asarray(bottlenecks[i]).reshape(-1) for i in part])
        out = logits[begin : begin + len(part)]
        matmul(rows.astype(np.float32, copy=False), kernel, out=out)
    # A sample whose logits are not finite (a damaged bottleneck) says nothing about the scale.
    usable = finite_rows(logits)
    logits, chosen = logits[usable], chosen[usable]
    return _confident_scale(logits.astype(np.float64), labels[chosen], kernel.shape[1])


def _confident_scale(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """The factor that gives the median training sample TARGET_CONFIDENCE (see module doc)."""
    if num_classes == 1:
        return 1.0
    own = logits[np.arange(len(labels)), labels]
    others = logits.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    margins = own - others.max(axis=1)
    margins = margins[margins > 0]
    if not len(margins):
        # No sample is nearer its own class than another: there is no direction to sharpen.
        return 1.0
    wanted = math.log(TARGET_CONFIDENCE * (num_classes - 1) / (1.0 - TARGET_CONFIDENCE))
    return wanted / float(np.median(margins))


class Imprinter:
    """Imprinted heads from a sample set; the scale is measured again only when the samples
    changed enough since the last measurement (``samples.Measured``)."""

    def __init__(self, samples: SampleSet, num_classes: int, rng: np.random.Generator) -> None:
        """Imprints heads of ``num_classes`` slots from ``samples``."""
        self._samples = samples
        self._num_classes = num_classes
        self._rng = rng
        self._scale: tuple[Measured, float] | None = None  # what it was measured on, the scale

    def head(self, snapshot: SampleSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """``(kernel, bias)`` imprinted from all of ``snapshot`` (the sample set's own sums)."""
        sums, counts = self._samples.class_sums()
        measured = self._samples.measured()
        cached = self._scale
        scale = cached[1] if cached is not None and cached[0].still_fits(measured) else None
        made = imprint(sums, counts, snapshot.bottlenecks, snapshot.labels, self._rng, scale)
        if scale is None:
            self._scale = (measured, made.scale)
        return made.kernel, made.bias

    def fold_head(self, snapshot: SampleSnapshot, subset: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(kernel, bias)`` imprinted from the samples ``subset`` of ``snapshot`` alone."""
        fold = snapshot.subset(subset)
        sums, counts = class_sums(fold.bottlenecks, fold.labels, self._num_classes)
        made = imprint(sums, counts, fold.bottlenecks, fold.labels, self._rng)
        return made.kernel, made.bias
