"""The stored training samples: one bottleneck, class slot and id per labelled frame.

Bottlenecks are kept as float16 by default: half the memory of float32 (1000 MobileNetV2 7x7
samples: 125 MB instead of 250 MB), with a relative rounding error of 0.05% on features that
training and imprinting average over anyway; training feeds them to the float32 model input
without a staging copy. Per class slot the store also keeps the running sum (float64) and count
of its bottlenecks, updated with each change, so class means (imprinting, the open-set test)
cost O(classes x features), not O(samples x features).

A store can keep its bottlenecks in memory (the Python API) or leave them where they are kept
durably anyway and read them when used (the daemon: a :class:`RowSource` over the state
database). Then memory does not grow with the samples: only ids, slots and the class sums stay
in memory, and a training epoch or a measurement reads the rows it uses (from the page cache,
which the kernel can reclaim, not from the process's own memory). A snapshot of such a store
reads rows later; when one of them was removed meanwhile it raises :class:`SamplesChanged` and
the work is redone on a new snapshot (:meth:`SampleSet.using_snapshot`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from ..errors import SamplesChanged
from .pooled import PooledFeatures
from .sample_views import (
    REMEASURE_GROWTH,
    Measured,
    RowSource,
    SampleSnapshot,
    StoredRows,
    class_sums,
)

__all__ = [
    "DEFAULT_DTYPE",
    "REMEASURE_GROWTH",
    "SNAPSHOT_ATTEMPTS",
    "Measured",
    "RowSource",
    "SampleSet",
    "SampleSnapshot",
    "StoredRows",
    "class_sums",
]

DEFAULT_DTYPE = np.float16
SUM_CHUNK = 64  # rows read at a time when a class sum is computed again from a RowSource
SNAPSHOT_ATTEMPTS = 5  # tries of a piece of work whose samples keep changing under it
T = TypeVar("T")


class SampleSet:
    """Bottlenecks with their class slot and a sample id, safe to use from several threads.

    In memory, each bottleneck is its own read-only array, so memory grows by exactly one
    bottleneck per sample and a snapshot costs a list copy, not a copy of the data: a snapshot
    taken by the trainer stays valid while samples are added, removed or relabelled. Attached
    to a :class:`RowSource` (:meth:`attach`), the store keeps no bottleneck at all.
    """

    def __init__(
        self,
        num_slots: int,
        features: int,
        dtype: np.dtype | type = DEFAULT_DTYPE,
        channels: int | None = None,
    ) -> None:
        """An empty store for ``num_slots`` class slots of ``features``-long bottlenecks; with
        ``channels`` (the bottleneck's last axis), it keeps their pooled features too."""
        self._num_slots = num_slots
        self.dtype = np.dtype(dtype)
        self._lock = threading.Lock()
        self._bottlenecks: list[np.ndarray] = []  # in memory only (no source)
        self._source: RowSource | None = None
        self._labels: list[int] = []
        self._ids: list[int] = []
        self._index: dict[int, int] = {}  # id -> position
        self._next_id = 0
        self._sums = np.zeros((num_slots, features), dtype=np.float64)
        self._counts = np.zeros(num_slots, dtype=np.int64)
        self._stale: set[int] = set()  # slots whose sum is to be read again from the source
        self._slot_changes = np.zeros(num_slots, dtype=np.int64)  # per slot, with each change
        self._version = 0  # changes with every change of the samples
        self._edits = 0  # changes with every change but an addition
        self._generation = 0  # changes when every sample is replaced
        self.pooled = PooledFeatures(channels or features)  # by id, see pooled.py

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

    @property
    def generation(self) -> int:
        """A number that changes whenever every sample is replaced (a load, an attach)."""
        return self._generation

    @property
    def in_memory(self) -> bool:
        """Whether the bottlenecks are held here (False: read from a RowSource when used)."""
        return self._source is None

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
        """Store a sample and return its id (``sample_id``, or the next free one). Attached to
        a source, the sample must be in it already (only its sum is taken here)."""
        array = self.stored(bottleneck)
        with self._lock:
            if sample_id is None:
                sample_id = self._next_id
            if sample_id in self._index:
                raise ValueError(f"sample id {sample_id} is taken")
            self._next_id = max(self._next_id, sample_id + 1)
            self._index[sample_id] = len(self._ids)
            if self._source is None:
                self._bottlenecks.append(array)
            self._labels.append(label)
            self._ids.append(sample_id)
            self.pooled.set(sample_id, array)
            self._sums[label] += array.reshape(-1)
            self._counts[label] += 1
            self._slot_changes[label] += 1
            self._version += 1
            return sample_id

    def label_of(self, sample_id: int) -> int | None:
        """The class slot of sample ``sample_id`` (None: no such sample)."""
        with self._lock:
            position = self._index.get(sample_id)
            return None if position is None else self._labels[position]

    def _take_out(self, position: int, label: int) -> None:
        """Take the bottleneck at ``position`` out of ``label``'s sum."""
        self._counts[label] -= 1
        self._slot_changes[label] += 1
        if not self._counts[label]:
            self._sums[label] = 0.0  # no rounding residue in an empty class
            self._stale.discard(label)
        elif self._source is None:
            self._sums[label] -= self._bottlenecks[position].reshape(-1)
        else:
            self._stale.add(label)  # the row may be gone from the source already

    def remove(self, sample_id: int) -> int | None:
        """Forget one sample; returns its class slot (None: there was none with that id)."""
        with self._lock:
            position = self._index.get(sample_id)
            if position is None:
                return None
            label = self._labels[position]
            self._take_out(position, label)
            if self._source is None:
                del self._bottlenecks[position]
            self.pooled.drop([sample_id])
            del self._labels[position]
            del self._ids[position]
            self._reindex()
            return label

    def relabel(self, sample_id: int, label: int) -> int | None:
        """Move one sample to class slot ``label``; returns its old slot (None: no sample)."""
        with self._lock:
            position = self._index.get(sample_id)
            if position is None:
                return None
            old = self._labels[position]
            self._take_out(position, old)
            if self._source is None:
                self._sums[label] += self._bottlenecks[position].reshape(-1)
            else:
                self._stale.add(label)
            self._counts[label] += 1
            self._slot_changes[label] += 1
            self._labels[position] = label
            self._version += 1
            self._edits += 1
            return old

    def counts(self) -> list[int]:
        """Number of samples per class slot."""
        with self._lock:
            return self._counts.tolist()

    def class_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the per-slot sums (slots x features, float64) and counts.

        A slot whose sum went stale (a row left it while the store is attached to a source) is
        summed again from the source, outside the lock: the frame path, which takes the lock
        for the counts, never waits for a database read. A slot that changed during its read is
        read again; SamplesChanged when the samples keep changing.
        """
        for _ in range(SNAPSHOT_ATTEMPTS):
            with self._lock:
                if not self._stale:
                    return self._sums.copy(), self._counts.copy()
                source, generation = self._source, self._generation
                assert source is not None
                work = {
                    slot: (self._members(slot), int(self._slot_changes[slot]))
                    for slot in sorted(self._stale)
                }
            features = self._sums.shape[1]
            totals = {slot: _sum_rows(source, ids, features) for slot, (ids, _) in work.items()}
            with self._lock:
                if self._generation != generation:
                    continue
                for slot, (_, changes) in work.items():
                    total = totals[slot]
                    if total is not None and self._slot_changes[slot] == changes:
                        self._sums[slot] = total
                        self._stale.discard(slot)
        raise SamplesChanged("the samples kept changing while their class sums were read")

    def _members(self, slot: int) -> list[int]:
        """The ids of the samples of ``slot`` (lock held)."""
        return [i for i, label in zip(self._ids, self._labels, strict=True) if label == slot]

    def snapshot(self) -> SampleSnapshot:
        """The samples as they are now."""
        with self._lock:
            labels = np.asarray(self._labels, dtype=np.int32)
            ids = np.asarray(self._ids, dtype=np.int64)
            if self._source is None:
                return SampleSnapshot(tuple(self._bottlenecks), labels, ids, self._version)
            rows = StoredRows(lambda: self._generation, self._source, ids, self._generation)
            return SampleSnapshot(rows, labels, ids, self._version)

    def using_snapshot(self, work: Callable[[SampleSnapshot], T]) -> T:
        """``work(snapshot)``, on a new snapshot again when its samples changed under it."""
        for attempt in range(SNAPSHOT_ATTEMPTS):
            try:
                return work(self.snapshot())
            except SamplesChanged:
                if attempt == SNAPSHOT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def clear(self, label: int | None = None) -> int:
        """Remove the samples of class slot ``label`` (all when None); return how many went."""
        with self._lock:
            keep = [i for i, lab in enumerate(self._labels) if label is not None and lab != label]
            removed = len(self._labels) - len(keep)
            if self._source is None:
                self._bottlenecks = [self._bottlenecks[i] for i in keep]
            self._labels = [self._labels[i] for i in keep]
            self._ids = [self._ids[i] for i in keep]
            self.pooled.keep_only(self._ids)
            if label is None:
                self._sums[:] = 0.0
                self._counts[:] = 0
                self._stale.clear()
                self._slot_changes += 1
            else:
                self._sums[label] = 0.0
                self._counts[label] = 0
                self._stale.discard(label)
                self._slot_changes[label] += 1
            self._reindex()
            return removed

    def replace(
        self,
        bottlenecks: Sequence[np.ndarray],
        labels: Sequence[int],
        ids: Sequence[int],
        next_id: int,
    ) -> None:
        """Replace every sample (loading a saved state); they are then held in memory."""
        arrays = [self.stored(b) for b in bottlenecks]
        with self._lock:
            self._source = None
            self._bottlenecks = arrays
            self._set_index(labels, ids, next_id)
            self.pooled.keep_only(())
            for array, label, sample_id in zip(arrays, self._labels, self._ids, strict=True):
                self._sums[label] += array.reshape(-1)
                self.pooled.set(sample_id, array)

    def attach(
        self, source: RowSource, labels: Sequence[int], ids: Sequence[int], next_id: int
    ) -> None:
        """Replace every sample with those of ``source`` (``ids`` with their ``labels``), which
        are read from it when used and never held here. Every row is read once now, for the
        class sums, before the lock is taken (errors of the source, such as a damaged row, are
        raised here and nothing changes; a row that is gone raises SamplesChanged)."""
        labels = [int(x) for x in labels]
        ids = [int(x) for x in ids]
        sums = np.zeros_like(self._sums)
        features = PooledFeatures(self.pooled.channels)
        for slot in sorted(set(labels)):
            members = [i for i, lab in zip(ids, labels, strict=True) if lab == slot]
            total = _sum_rows(source, members, sums.shape[1], features)
            if total is None:
                raise SamplesChanged("a sample went while the samples were loaded")
            sums[slot] = total
        with self._lock:
            self._source = source
            self._bottlenecks = []
            self._set_index(labels, ids, next_id)
            self._sums[:] = sums
            self.pooled = features

    def _set_index(self, labels: Sequence[int], ids: Sequence[int], next_id: int) -> None:
        self._labels = [int(x) for x in labels]
        self._ids = [int(x) for x in ids]
        self._next_id = max(int(next_id), max(self._ids, default=-1) + 1)
        self._sums[:] = 0.0
        labels_array = np.asarray(self._labels, dtype=np.int64)
        self._counts[:] = np.bincount(labels_array, minlength=self._num_slots)[: self._num_slots]
        self._stale.clear()
        self._slot_changes += 1
        self._generation += 1
        self._reindex()

    def _reindex(self) -> None:
        """After a removal, clear or replacement: new positions, and an edit."""
        self._index = {sample_id: i for i, sample_id in enumerate(self._ids)}
        self._version += 1
        self._edits += 1


def _sum_rows(
    source: RowSource, ids: Sequence[int], features: int, pooled: PooledFeatures | None = None
) -> np.ndarray | None:
    """The float64 sum of the rows ``ids`` of ``source``, SUM_CHUNK rows at a time (None: one
    of them is gone); with ``pooled``, each row's pooled feature is kept there on the way."""
    total = np.zeros(features, dtype=np.float64)
    for start in range(0, len(ids), SUM_CHUNK):
        part = ids[start : start + SUM_CHUNK]
        for sample_id, row in zip(part, source.rows(part), strict=True):
            if row is None:
                return None
            total += row.reshape(-1)
            if pooled is not None:
                pooled.set(sample_id, row)
    return total
