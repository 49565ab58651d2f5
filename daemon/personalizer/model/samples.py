"""The stored training samples: one bottleneck, class and id per labelled frame."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleSnapshot:
    """An immutable view of the samples at one moment (what one training epoch uses)."""

    bottlenecks: tuple[np.ndarray, ...]
    labels: np.ndarray  # int32 class indices
    ids: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.bottlenecks)


class SampleStore:
    """Bottlenecks with their class index and a sample id, safe to use from several threads.

    Each bottleneck is its own array, so memory grows by exactly one bottleneck per sample and
    a snapshot costs a list copy, not a copy of the data. Stored arrays are never modified in
    place: a snapshot taken by the trainer stays valid while samples are added or cleared.
    """

    def __init__(self, num_classes: int) -> None:
        """An empty store for ``num_classes`` classes."""
        self._num_classes = num_classes
        self._lock = threading.Lock()
        self._bottlenecks: list[np.ndarray] = []
        self._labels: list[int] = []
        self._ids: list[int] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def next_id(self) -> int:
        """The id the next sample will get (ids are never reused, also across clears)."""
        return self._next_id

    def add(self, bottleneck: np.ndarray, label: int) -> int:
        """Store a sample (the store keeps ``bottleneck``; do not modify it) and return its id."""
        bottleneck.flags.writeable = False
        with self._lock:
            sample_id = self._next_id
            self._next_id += 1
            self._bottlenecks.append(bottleneck)
            self._labels.append(label)
            self._ids.append(sample_id)
            return sample_id

    def counts(self) -> list[int]:
        """Number of samples per class index."""
        with self._lock:
            labels = np.asarray(self._labels, dtype=np.int64)
        return np.bincount(labels, minlength=self._num_classes).tolist()

    def snapshot(self) -> SampleSnapshot:
        """The samples as they are now."""
        with self._lock:
            return SampleSnapshot(
                tuple(self._bottlenecks),
                np.asarray(self._labels, dtype=np.int32),
                np.asarray(self._ids, dtype=np.int64),
            )

    def clear(self, label: int | None = None) -> int:
        """Remove the samples of class ``label`` (all when None); return how many went."""
        with self._lock:
            keep = [i for i, lab in enumerate(self._labels) if label is not None and lab != label]
            removed = len(self._labels) - len(keep)
            self._bottlenecks = [self._bottlenecks[i] for i in keep]
            self._labels = [self._labels[i] for i in keep]
            self._ids = [self._ids[i] for i in keep]
            return removed

    def replace(
        self,
        bottlenecks: Sequence[np.ndarray],
        labels: Sequence[int],
        ids: Sequence[int],
        next_id: int,
    ) -> None:
        """Replace every sample (used when loading a saved state)."""
        for bottleneck in bottlenecks:
            bottleneck.flags.writeable = False
        with self._lock:
            self._bottlenecks = list(bottlenecks)
            self._labels = [int(x) for x in labels]
            self._ids = [int(x) for x in ids]
            self._next_id = int(next_id)
