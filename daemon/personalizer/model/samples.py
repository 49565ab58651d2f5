"""The stored training samples: one bottleneck, class slot and id per labelled frame.

Bottlenecks are kept as float16 by default: half the memory of float32 (1000 MobileNetV2 7x7
samples: 125 MB instead of 250 MB), with a relative rounding error of 0.05% on features that
training and imprinting average over anyway; training feeds them to the float32 model input
without a staging copy. Per class slot the store also keeps the running sum (float64) and count
of its bottlenecks, updated with each change, so class means (imprinting, the open-set test)
cost O(classes x features), not O(samples x features).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_DTYPE = np.float16


def class_sums(
    rows: Sequence[np.ndarray], labels: Sequence[int], num_slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class slot: the sum (float64) and the number of ``rows``."""
    features = int(np.asarray(rows[0]).size) if len(rows) else 0
    sums = np.zeros((num_slots, features), dtype=np.float64)
    counts = np.zeros(num_slots, dtype=np.int64)
    for row, label in zip(rows, labels, strict=True):
        sums[label] += np.asarray(row, dtype=np.float64).reshape(-1)
        counts[label] += 1
    return sums, counts


@dataclass(frozen=True)
class SampleSnapshot:
    """An immutable view of the samples at one moment (what one training epoch uses)."""

    bottlenecks: tuple[np.ndarray, ...]
    labels: np.ndarray  # int32 class slots
    ids: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.bottlenecks)


REMEASURE_GROWTH = 1.25  # a measurement on the samples is redone once they grew by a quarter


@dataclass(frozen=True)
class Measured:
    """What a measurement on the samples (the imprinting scale, the open-set threshold) saw:
    their edits (removals, relabels, replacements), how many there were and which slots had any.

    New samples of the same classes change such a statistic little, so it is measured again only
    when :meth:`still_fits` says no: after an edit, a change of the classes, or growth by
    :data:`REMEASURE_GROWTH`. The cost of measuring (proportional to the samples, up to its cap)
    is then paid at 10, 13, 16, ... samples, not at every sample.
    """

    edits: int
    count: int
    slots: tuple[int, ...]

    def still_fits(self, now: Measured) -> bool:
        """Whether a measurement taken at ``self`` still stands for the samples at ``now``."""
        return (
            now.edits == self.edits
            and now.slots == self.slots
            and self.count <= now.count < self.count * REMEASURE_GROWTH
        )


class SampleStore:
    """Bottlenecks with their class slot and a sample id, safe to use from several threads.

    Each bottleneck is its own read-only array, so memory grows by exactly one bottleneck per
    sample and a snapshot costs a list copy, not a copy of the data: a snapshot taken by the
    trainer stays valid while samples are added, removed or relabelled.
    """

    def __init__(
        self, num_slots: int, features: int, dtype: np.dtype | type = DEFAULT_DTYPE
    ) -> None:
        """An empty store for ``num_slots`` class slots of ``features``-long bottlenecks."""
        self._num_slots = num_slots
        self.dtype = np.dtype(dtype)
        self._lock = threading.Lock()
        self._bottlenecks: list[np.ndarray] = []
        self._labels: list[int] = []
        self._ids: list[int] = []
        self._index: dict[int, int] = {}  # id -> position
        self._next_id = 0
        self._sums = np.zeros((num_slots, features), dtype=np.float64)
        self._counts = np.zeros(num_slots, dtype=np.int64)
        self._version = 0  # changes with every change of the samples
        self._edits = 0  # changes with every change but an addition

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def next_id(self) -> int:
        """The id the next sample will get (ids are never reused, also across clears)."""
        return self._next_id

    @property
    def version(self) -> int:
        """A number that changes whenever the samples change (for caches of derived data)."""
        return self._version

    def measured(self, slots: Sequence[int] | None = None) -> Measured:
        """The state a measurement taken now depends on (only ``slots`` when given)."""
        with self._lock:
            present = np.flatnonzero(self._counts).tolist()
            if slots is not None:
                present = [slot for slot in present if slot in slots]
            return Measured(self._edits, len(self._ids), tuple(present))

    def stored(self, bottleneck: np.ndarray) -> np.ndarray:
        """``bottleneck`` as the store keeps it (its dtype, read-only)."""
        array = np.asarray(bottleneck).astype(self.dtype, copy=False)
        if array is bottleneck and array.flags.writeable:
            array = array.copy()
        array.flags.writeable = False
        return array

    def add(self, bottleneck: np.ndarray, label: int, sample_id: int | None = None) -> int:
        """Store a sample and return its id (``sample_id``, or the next free one)."""
        array = self.stored(bottleneck)
        with self._lock:
            if sample_id is None:
                sample_id = self._next_id
            if sample_id in self._index:
                raise ValueError(f"sample id {sample_id} is taken")
            self._next_id = max(self._next_id, sample_id + 1)
            self._index[sample_id] = len(self._ids)
            self._bottlenecks.append(array)
            self._labels.append(label)
            self._ids.append(sample_id)
            self._sums[label] += array.reshape(-1)
            self._counts[label] += 1
            self._version += 1
            return sample_id

    def label_of(self, sample_id: int) -> int | None:
        """The class slot of sample ``sample_id`` (None: no such sample)."""
        with self._lock:
            position = self._index.get(sample_id)
            return None if position is None else self._labels[position]

    def remove(self, sample_id: int) -> int | None:
        """Forget one sample; returns its class slot (None: there was none with that id)."""
        with self._lock:
            position = self._index.get(sample_id)
            if position is None:
                return None
            label = self._labels[position]
            self._sums[label] -= self._bottlenecks[position].reshape(-1)
            self._counts[label] -= 1
            if not self._counts[label]:
                self._sums[label] = 0.0  # no rounding residue in an empty class
            for items in (self._bottlenecks, self._labels, self._ids):
                del items[position]
            self._reindex()
            return label

    def relabel(self, sample_id: int, label: int) -> int | None:
        """Move one sample to class slot ``label``; returns its old slot (None: no sample)."""
        with self._lock:
            position = self._index.get(sample_id)
            if position is None:
                return None
            old = self._labels[position]
            row = self._bottlenecks[position].reshape(-1)
            self._sums[old] -= row
            self._counts[old] -= 1
            if not self._counts[old]:
                self._sums[old] = 0.0
            self._sums[label] += row
            self._counts[label] += 1
            self._labels[position] = label
            self._version += 1
            self._edits += 1
            return old

    def counts(self) -> list[int]:
        """Number of samples per class slot."""
        with self._lock:
            return self._counts.tolist()

    def class_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the per-slot sums (slots x features, float64) and counts."""
        with self._lock:
            return self._sums.copy(), self._counts.copy()

    def snapshot(self) -> SampleSnapshot:
        """The samples as they are now."""
        with self._lock:
            return SampleSnapshot(
                tuple(self._bottlenecks),
                np.asarray(self._labels, dtype=np.int32),
                np.asarray(self._ids, dtype=np.int64),
            )

    def clear(self, label: int | None = None) -> int:
        """Remove the samples of class slot ``label`` (all when None); return how many went."""
        with self._lock:
            keep = [i for i, lab in enumerate(self._labels) if label is not None and lab != label]
            removed = len(self._labels) - len(keep)
            self._bottlenecks = [self._bottlenecks[i] for i in keep]
            self._labels = [self._labels[i] for i in keep]
            self._ids = [self._ids[i] for i in keep]
            if label is None:
                self._sums[:] = 0.0
                self._counts[:] = 0
            else:
                self._sums[label] = 0.0
                self._counts[label] = 0
            self._reindex()
            return removed

    def replace(
        self,
        bottlenecks: Sequence[np.ndarray],
        labels: Sequence[int],
        ids: Sequence[int],
        next_id: int,
    ) -> None:
        """Replace every sample (loading a saved state)."""
        arrays = [self.stored(b) for b in bottlenecks]
        with self._lock:
            self._bottlenecks = arrays
            self._labels = [int(x) for x in labels]
            self._ids = [int(x) for x in ids]
            self._next_id = max(int(next_id), max(self._ids, default=-1) + 1)
            self._sums[:] = 0.0
            self._counts[:] = 0
            for array, label in zip(arrays, self._labels, strict=True):
                self._sums[label] += array.reshape(-1)
                self._counts[label] += 1
            self._reindex()

    def _reindex(self) -> None:
        """After a removal, clear or replacement: new positions, and an edit."""
        self._index = {sample_id: i for i, sample_id in enumerate(self._ids)}
        self._version += 1
        self._edits += 1
