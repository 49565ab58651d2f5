"""Reading stored bottlenecks by id on a connection of its own (the model's row source).

A WAL reader never blocks a write and a write never blocks it, so training and evaluation read
their rows while commands write. Rows come as read-only float16 arrays over the bytes SQLite
returned, each checked against its CRC and the bottleneck shape. A damaged row is never
returned: the reader hands its id and the reason to ``on_damaged`` (the state store sets it
aside and takes it out of the model's samples) and raises :class:`SamplesChanged`, so the work
that read it is redone on the samples that remain.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DamagedSampleError, SamplesChanged, StateFileError
from .blobs import checked_bottleneck
from .sqlite_file import connect

OnDamaged = Callable[[dict[int, str]], None]
CHUNK = 500  # ids per query (SQLite's variable limit is far above)


class SampleReader:
    """Reads the bottlenecks of one state database file by id."""

    def __init__(
        self, path: str | Path, shape: Sequence[int], on_damaged: OnDamaged | None = None
    ) -> None:
        """A reader of the database at ``path``, whose bottlenecks are of ``shape``;
        ``on_damaged(id -> why)`` hears of damaged rows (default: they raise)."""
        self.path = Path(path)
        self._shape = tuple(int(n) for n in shape)
        self._on_damaged = on_damaged
        self._lock = threading.Lock()
        try:
            self._db: sqlite3.Connection | None = connect(self.path)
            self._db.execute("PRAGMA query_only = 1")
        except sqlite3.Error as err:
            raise StateFileError(f"{self.path} cannot be opened for reading ({err})") from err

    def rows(self, ids: Sequence[int]) -> list[np.ndarray | None]:
        """The bottlenecks of ``ids`` in that order; None for an id with no sample.

        Raises:
            SamplesChanged: the reader was closed (the daemon's state was replaced), or a row
                was damaged (reported to ``on_damaged`` first).
            DamagedSampleError: a row was damaged and nobody listens for that.
            StateFileError: the file cannot be read.
        """
        found: dict[int, tuple[bytes, bytes | None, int]] = {}
        with self._lock:
            if self._db is None:
                raise SamplesChanged(f"{self.path} was closed")
            try:
                for start in range(0, len(ids), CHUNK):
                    part = [int(i) for i in ids[start : start + CHUNK]]
                    marks = ",".join("?" * len(part))
                    query = f"SELECT id, bottleneck, image, crc FROM samples WHERE id IN ({marks})"
                    for sample_id, blob, image, stored in self._db.execute(query, part):
                        found[int(sample_id)] = (blob, image, stored)
            except sqlite3.Error as err:
                raise StateFileError(
                    f"reading the samples from {self.path} failed ({err})"
                ) from err
        rows: list[np.ndarray | None] = []
        damaged: dict[int, str] = {}
        for sample_id in (int(i) for i in ids):
            if sample_id not in found:
                rows.append(None)
                continue
            blob, image, stored = found[sample_id]
            try:
                rows.append(
                    checked_bottleneck(self.path, sample_id, blob, image, stored, self._shape)
                )
            except DamagedSampleError as err:
                if self._on_damaged is None:
                    raise
                damaged[sample_id] = err.why
        if damaged:
            assert self._on_damaged is not None
            self._on_damaged(damaged)
            raise SamplesChanged(f"damaged sample(s) {sorted(damaged)} were set aside")
        return rows

    def close(self) -> None:
        """Close the connection; later reads raise SamplesChanged."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
