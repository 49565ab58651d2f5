"""One evaluation trial: teach some objects, then show held-out frames of taught and untaught ones.

A trial picks ``classes`` objects of a source to teach and ``shots`` samples of each (from the
varied or the still shots), calibrates an open-set method on those samples exactly as the board
does (the store's per-class sums and counts, the bottlenecks as stored: float16), and classifies
frames that were never samples: held-out shots of the taught objects (they should come out as
their class) and of every untaught object of the source (they should come out ``unknown``).

The class a known frame is given is the imprinted head's (``initialize_from_samples``): the
class whose unit mean bottleneck is closest, computed here in numpy (the softmax of the scaled
logits has the same argmax). tests/runtime/test_open_set_eval.py checks the same figures through
the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tests.eval.embeddings import Embedded


@dataclass(frozen=True)
class Method:
    """An open-set method: ``fit`` makes a calibration from the samples, ``judge`` says of each
    of a batch of bottlenecks whether it is known, and the score behind that (higher: more
    known), as two arrays."""

    name: str
    fit: Callable[..., object]  # (bottlenecks, labels, sums, counts, shape) -> calibration
    judge: Callable[[object, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Trial:
    """Which objects are taught, with which of their shots."""

    taught: np.ndarray  # object indices, one class each
    shots: np.ndarray  # (classes, shots) shot indices into the sample set
    samples: str  # "varied" or "still"


@dataclass(frozen=True)
class Outcome:
    """What one trial measured, per frame."""

    taught_right: np.ndarray  # bool per held-out taught frame: known and the right class
    taught_known: np.ndarray  # bool per held-out taught frame: known (any class)
    untaught_unknown: np.ndarray  # bool per untaught frame
    taught_scores: np.ndarray
    untaught_scores: np.ndarray

    @property
    def auroc(self) -> float:
        """How well the score orders taught frames above untaught ones (0.5: not at all)."""
        return auroc(self.taught_scores, self.untaught_scores)


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores ``positive`` (should be high) vs ``negative``; ties
    count half."""
    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    if not len(positive) or not len(negative):
        return float("nan")
    # Replace -inf (nothing taught) by a finite value below everything, so ranks are defined.
    both = np.concatenate([positive, negative])
    finite = both[np.isfinite(both)]
    low = (finite.min() - 1.0) if len(finite) else -1.0
    both = np.where(np.isfinite(both), both, low)
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    sorted_values = both[order]
    # Average ranks over ties.
    start = 0
    for end in range(1, len(both) + 1):
        if end == len(both) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    positive_ranks = ranks[: len(positive)].sum()
    return float(
        (positive_ranks - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))
    )


def draw(
    objects: int,
    classes: int,
    shots: int,
    samples: str,
    available: int,
    rng: np.random.Generator,
    identical: bool = False,
) -> Trial:
    """A random trial: ``classes`` of ``objects`` taught with ``shots`` of ``available`` shots
    each (``identical``: the same shot ``shots`` times, as from a replayed photo)."""
    taught = np.sort(rng.choice(objects, classes, replace=False))
    if identical:
        return Trial(taught, np.zeros((classes, shots), dtype=np.int64), samples)
    chosen = np.stack([np.sort(rng.choice(available, shots, replace=False)) for _ in taught])
    return Trial(taught, chosen, samples)


def run(
    data: Embedded,
    trial: Trial,
    method: Method,
    taught_frames: str,
    untaught_frames: str | None = None,
) -> Outcome:
    """Teach ``trial``'s samples, calibrate ``method``, classify the held-out frames of set
    ``taught_frames`` (taught objects) and ``untaught_frames`` (default the same set) of every
    other object."""
    stored = data.sets[trial.samples]
    shape = stored.shape[2:]
    classes = len(trial.taught)
    pairs = zip(trial.taught, trial.shots, strict=True)
    bottlenecks = [stored[o, s] for o, shots in pairs for s in shots]
    labels = np.repeat(np.arange(classes), trial.shots.shape[1])
    flat = np.stack([b.reshape(-1).astype(np.float64) for b in bottlenecks])
    sums = np.zeros((classes, flat.shape[1]))
    np.add.at(sums, labels, flat)
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    calibration = method.fit(bottlenecks, labels, sums, counts, shape)
    head = _unit(sums / counts[:, None]).astype(np.float32)

    frames = data.sets[taught_frames][trial.taught]  # (classes, frames, *shape)
    truth = np.repeat(np.arange(classes), frames.shape[1])
    frames = frames.reshape(-1, *shape)
    taught_known, taught_scores = method.judge(calibration, frames)
    with np.errstate(all="ignore"):
        predicted = np.argmax(frames.reshape(len(frames), -1).astype(np.float32) @ head.T, axis=1)
    untaught = np.setdiff1d(np.arange(stored.shape[0]), trial.taught)
    others = data.sets[untaught_frames or taught_frames][untaught].reshape(-1, *shape)
    untaught_known, untaught_scores = method.judge(calibration, others)
    return Outcome(
        np.asarray(taught_known & (predicted == truth), dtype=bool),
        np.asarray(taught_known, dtype=bool),
        ~np.asarray(untaught_known, dtype=bool),
        np.asarray(taught_scores, dtype=np.float64),
        np.asarray(untaught_scores, dtype=np.float64),
    )


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
