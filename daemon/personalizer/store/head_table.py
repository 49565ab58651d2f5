"""The ``tensors`` table: the head's parameters and the optimizer state, one row per array.

The arrays are raw little-endian float32 bytes with their shape and a CRC; the bundle they
belong to and the training counters are meta values. A save writes them all in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StateFileError
from ..model.head_state import HeadState
from .blobs import crc, to_blob

if TYPE_CHECKING:
    from .sqlite_file import StateDatabase

HEAD_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tensors (
        kind TEXT NOT NULL,
        idx INTEGER NOT NULL,
        dtype TEXT NOT NULL,
        shape TEXT NOT NULL,
        data BLOB NOT NULL,
        crc INTEGER NOT NULL,
        PRIMARY KEY (kind, idx)
    )""",
)
PARAMETERS, OPTIMIZER_STATE = "parameter", "optimizer_state"
COUNTERS = ("parameters_bundle", "steps", "epochs")


class HeadTable:
    """The saved head of one state database."""

    def __init__(self, db: StateDatabase) -> None:
        """The table of ``db``."""
        self._db = db

    def save(self, saved: HeadState, extra_meta: Mapping[str, Any] = {}) -> None:
        """Write parameters, optimizer state and counters (and ``extra_meta``) at once."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM tensors")
            for kind, arrays in (
                (PARAMETERS, saved.parameters),
                (OPTIMIZER_STATE, saved.optimizer_state),
            ):
                blobs = [to_blob(a, "float32") for a in arrays]
                db.executemany(
                    "INSERT INTO tensors (kind, idx, dtype, shape, data, crc) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (kind, i, "float32", json.dumps(list(a.shape)), blob, crc(blob))
                        for i, (a, blob) in enumerate(zip(arrays, blobs, strict=True))
                    ],
                )
            self._db.put_meta("parameters_bundle", saved.bundle_id)
            self._db.put_meta("steps", str(int(saved.steps)))
            self._db.put_meta("epochs", str(int(saved.epochs)))
            for key, value in extra_meta.items():
                self._db.put_meta(key, value)

    def load(self) -> HeadState | None:
        """The saved head, or None when none was saved. StateFileError when it is damaged."""
        path = self._db.path
        with self._db.lock:
            bundle_id = self._db.get_meta("parameters_bundle")
            if bundle_id is None:
                return None
            rows = self._db.query(
                "SELECT kind, idx, dtype, shape, data, crc FROM tensors ORDER BY kind, idx"
            )
            steps = int(self._db.get_meta("steps") or 0)
            epochs = int(self._db.get_meta("epochs") or 0)
        arrays: dict[str, list[np.ndarray]] = {PARAMETERS: [], OPTIMIZER_STATE: []}
        for kind, index, dtype, shape, data, stored_crc in rows:
            if stored_crc != crc(data):
                raise StateFileError(f"{path}: the saved {kind} {index} is damaged (checksum)")
            if kind not in arrays or index != len(arrays[kind]) or dtype != "float32":
                raise StateFileError(f"{path}: the saved {kind} tensors are inconsistent")
            try:
                array = np.frombuffer(data, dtype=np.dtype("float32").newbyteorder("<"))
                arrays[kind].append(array.reshape(json.loads(shape)).astype(np.float32))
            except (ValueError, TypeError) as err:
                raise StateFileError(f"{path}: a saved {kind} has a wrong size") from err
        return HeadState(
            bundle_id, tuple(arrays[PARAMETERS]), tuple(arrays[OPTIMIZER_STATE]), steps, epochs
        )

    def clear(self) -> None:
        """Forget the saved head (it is made again from the samples or the bundle)."""
        marks = ",".join("?" * len(COUNTERS))
        with self._db.transaction() as db:
            db.execute("DELETE FROM tensors")
            db.execute(f"DELETE FROM meta WHERE key IN ({marks})", COUNTERS)
