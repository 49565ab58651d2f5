"""Pooled features of the samples: how alike two shots are, and how varied a class is.

A bottleneck averaged over its positions (a 7x7x1280 one becomes 1280 numbers; a pooled one
stays as it is) compares shots of one thing by what they show, not by where in the picture it
is (the open-set test compares in the same space, see open_set.py). The sample set keeps this
for every sample: 1280 float32 numbers, 5 KB a sample, against 125 KB for a 7x7 bottleneck that
stays in the database. From it come the nearest earlier shot of a class (a new sample that is
nearly the same as one already there says so: "very like sample #12") and a class's variety.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .numerics import matmul

NEAR_DUPLICATE = 0.97  # cosine of pooled features: two shots of a still object, same light
# Variety (1 - the mean cosine of a class's shots to their mean) as the page words it.
VARIED = 0.04
SIMILAR = 0.015


def pooled(bottleneck: np.ndarray, channels: int) -> np.ndarray:
    """The average over the positions of one bottleneck (float32, ``channels`` long)."""
    rows = np.asarray(bottleneck, dtype=np.float32).reshape(-1, channels)
    with np.errstate(all="ignore"):
        return rows.mean(axis=0)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (an all-zero or non-finite row stays zero)."""
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
        ok = np.isfinite(norms) & (norms > 0)
        return np.where(ok, vectors / np.where(ok, norms, 1.0), 0.0)


def variety_word(variety: float | None) -> str:
    """How the page says a class's variety."""
    if variety is None:
        return "one shot"
    if variety >= VARIED:
        return "varied"
    if variety >= SIMILAR:
        return "similar shots"
    return "near-identical shots"


class PooledFeatures:
    """The pooled feature of each sample, by id. Each change replaces one entry of a dict (one
    step, safe to read from another thread)."""

    def __init__(self, channels: int) -> None:
        """Features of bottlenecks whose last axis has ``channels`` numbers."""
        self.channels = channels
        self._rows: dict[int, np.ndarray] = {}

    def set(self, sample_id: int, bottleneck: np.ndarray) -> None:
        """Keep the pooled feature of ``sample_id``'s bottleneck (as float16: half the memory,
        and a cosine needs no more)."""
        self._rows[sample_id] = pooled(bottleneck, self.channels).astype(np.float16)

    def drop(self, ids: Iterable[int]) -> None:
        """Forget ``ids``."""
        for sample_id in ids:
            self._rows.pop(sample_id, None)

    def keep_only(self, ids: Iterable[int]) -> None:
        """Forget every sample but ``ids``."""
        kept = set(ids)
        self.drop([i for i in list(self._rows) if i not in kept])

    def nearest(self, bottleneck: np.ndarray, ids: Iterable[int]) -> tuple[int, float] | None:
        """Of the samples ``ids``, the one most like ``bottleneck`` and their cosine."""
        # One .get per id: another thread may drop a row between a test and a read.
        found = [(i, row) for i, row in ((i, self._rows.get(i)) for i in ids) if row is not None]
        if not found:
            return None
        chosen = [i for i, _ in found]
        rows = unit(np.stack([row for _, row in found]).astype(np.float32))
        query = unit(pooled(bottleneck, self.channels)[None])[0]
        sims = matmul(rows, query)
        best = int(np.argmax(sims))
        return chosen[best], float(sims[best])

    def variety(self, ids: Iterable[int]) -> float | None:
        """How varied the samples ``ids`` are: 1 less the mean cosine of each to their mean
        (0: near-identical shots; about 0.05 for shots from other angles, distances and light). None
        for fewer than two."""
        rows = [row for row in map(self._rows.get, ids) if row is not None]
        if len(rows) < 2:
            return None
        units = unit(np.stack(rows).astype(np.float32))
        centre = unit(units.mean(axis=0)[None])[0]
        return float(1.0 - np.mean(matmul(units, centre)))
