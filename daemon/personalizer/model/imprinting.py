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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import NoSamplesError

TARGET_CONFIDENCE = 0.9


def imprinted_head(
    bottlenecks: Sequence[np.ndarray], labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(kernel (F, C), bias (C,))`` imprinted from the samples, both float32."""
    if not bottlenecks:
        raise NoSamplesError("imprinting needs at least one sample; add samples first")
    features = np.stack([b.reshape(-1) for b in bottlenecks]).astype(np.float64)
    kernel = np.zeros((features.shape[1], num_classes), dtype=np.float64)
    for c in range(num_classes):
        members = features[labels == c]
        if len(members):
            mean = members.mean(axis=0)
            norm = np.linalg.norm(mean)
            if norm > 0:
                kernel[:, c] = mean / norm
    scale = _confident_scale(features @ kernel, labels, num_classes)
    return (kernel * scale).astype(np.float32), np.zeros(num_classes, dtype=np.float32)


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
