"""The open-set methods the evaluation compares: the board's, and the one it replaced."""

from __future__ import annotations

import numpy as np

from personalizer.model import open_set
from tests.eval import baseline
from tests.eval.protocol import Method


def _fit_current(bottlenecks, labels, sums, counts, shape):
    return open_set.calibrate(bottlenecks, labels, sums, counts, shape=shape)


def _judge_current(calibration, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    margins = calibration.best_margins(frames)
    return margins >= 0.0, margins


def _fit_baseline(bottlenecks, labels, sums, counts, shape):
    return baseline.calibrate(bottlenecks, labels, sums, counts)


def _judge_baseline(calibration, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # calibration.is_known for a batch: cosine to the nearest present class mean, flattened.
    if not calibration.present.any():
        return np.zeros(len(frames), dtype=bool), np.zeros(len(frames))
    rows = np.asarray(frames, dtype=np.float32).reshape(len(frames), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    sims = rows @ calibration.unit_means.T
    best = np.where(calibration.present, sims, -np.inf).max(axis=1).astype(np.float64)
    return best >= calibration.threshold, best


CURRENT = Method("new", _fit_current, _judge_current)
BASELINE = Method("baseline", _fit_baseline, _judge_baseline)
