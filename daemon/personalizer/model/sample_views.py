"""Views of the samples: a snapshot of them at one moment, and what a measurement saw.

A :class:`SampleSnapshot` is immutable; the rows of a sample set that keeps none in memory are
read from its :class:`RowSource` when indexed (:class:`StoredRows`), and raise
:class:`SamplesChanged` when a row went or the set was replaced meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import SamplesChanged

REMEASURE_GROWTH = 1.25  # a measurement on the samples is redone once they grew by a quarter


class RowSource(Protocol):
    """Where a store that keeps no bottlenecks in memory reads them from."""

    def rows(self, ids: Sequence[int]) -> list[np.ndarray | None]:
        """The bottlenecks of ``ids`` in that order (read-only); None for a sample that is gone.
        Raises SamplesChanged once the source was closed."""
        ...


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


class StoredRows(Sequence):
    """The bottlenecks of a snapshot of a store backed by a :class:`RowSource`, read when
    indexed; raises :class:`SamplesChanged` when a row is gone or the store was replaced."""

    def __init__(
        self,
        current: Callable[[], int],
        source: RowSource,
        ids: np.ndarray,
        generation: int,
    ) -> None:
        """The rows of sample ``ids`` as of the sample set's ``generation`` (``current()`` says
        the set's generation now)."""
        self._current = current
        self._source = source
        self._ids = ids
        self._generation = generation

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index):  # type: ignore[override]
        """One bottleneck (an int index) or a list of them (a slice)."""
        if isinstance(index, slice):
            return self.take(range(*index.indices(len(self))))
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.take([index])[0]

    def take(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """The bottlenecks at ``indices``, read together."""
        ids = [int(self._ids[i]) for i in indices]
        if self._current() != self._generation:
            raise SamplesChanged("the samples were replaced")
        rows = self._source.rows(ids)
        if any(row is None for row in rows):
            raise SamplesChanged("a sample was removed")
        return rows  # type: ignore[return-value]

    def subset(self, indices: np.ndarray) -> StoredRows:
        """The rows at ``indices`` (still read when used)."""
        return StoredRows(self._current, self._source, self._ids[indices], self._generation)


@dataclass(frozen=True)
class SampleSnapshot:
    """An immutable view of the samples at one moment (what one training epoch uses)."""

    bottlenecks: Sequence[np.ndarray]  # a tuple, or StoredRows (read when indexed)
    labels: np.ndarray  # int32 class slots
    ids: np.ndarray  # int64
    version: int = 0  # the sample set's version when it was taken

    def __len__(self) -> int:
        return len(self.bottlenecks)

    def take(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """The bottlenecks at ``indices`` (one read for a stored snapshot)."""
        rows = self.bottlenecks
        if isinstance(rows, StoredRows):
            return rows.take(indices)
        return [rows[i] for i in indices]

    def subset(self, indices: np.ndarray) -> SampleSnapshot:
        """The samples at ``indices`` (positions), without copying a bottleneck."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.bottlenecks
        if isinstance(rows, StoredRows):
            kept: Sequence[np.ndarray] = rows.subset(indices)
        else:
            kept = tuple(rows[i] for i in indices)
        return SampleSnapshot(kept, self.labels[indices], self.ids[indices], self.version)


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
