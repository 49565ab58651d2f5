"""The ``review`` table: frames the board was unsure of, kept for the maker to label.

A row holds when the frame was first and last seen (and how often: near-duplicates are merged
into one row), why it was kept, what the board said (its class, its top scores), the bottleneck
(so a label makes it a sample without running the base model again), its pooled unit feature
(what near-duplicates are compared by) and the JPEG of the model-input crop, with a CRC over
bottleneck and image as for samples. At most ``limit`` rows are kept; the oldest go first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DamagedSampleError
from .blobs import SAMPLE_DTYPE, bottleneck_array, crc, to_blob

if TYPE_CHECKING:
    from .sqlite_file import StateDatabase

REVIEW_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS review (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created REAL NOT NULL,
        last_seen REAL NOT NULL,
        seen INTEGER NOT NULL,
        reason TEXT NOT NULL,
        predicted TEXT NOT NULL,
        scores TEXT NOT NULL,
        bottleneck BLOB NOT NULL,
        pooled BLOB NOT NULL,
        image BLOB,
        crc INTEGER NOT NULL
    )""",
)


@dataclass(frozen=True)
class ReviewItem:
    """One kept frame as a listing shows it."""

    id: int
    created: float
    last_seen: float
    seen: int  # frames merged into it (near-duplicates)
    reason: str
    predicted: str
    scores: dict[str, float] = field(repr=False)
    has_image: bool = True  # false with `state.store_images = false`

    def as_dict(self) -> dict[str, Any]:
        """The item as `cmd/review` answers it."""
        return {
            "id": self.id,
            "ts": round(self.created, 3),
            "last_seen": round(self.last_seen, 3),
            "seen": self.seen,
            "reason": self.reason,
            "class": self.predicted,
            "scores": self.scores,
            "image": self.has_image,
        }


class ReviewTable:
    """The kept frames of one state database."""

    def __init__(self, db: StateDatabase) -> None:
        """The table of ``db``."""
        self._db = db

    def add(
        self,
        created: float,
        reason: str,
        predicted: str,
        scores: dict[str, float],
        bottleneck: np.ndarray,
        pooled: np.ndarray,
        image: bytes | None,
        limit: int,
    ) -> tuple[int, list[int]]:
        """Keep one frame; returns its id and the ids of the oldest rows dropped to stay at
        ``limit``."""
        blob = to_blob(bottleneck, SAMPLE_DTYPE)
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO review (created, last_seen, seen, reason, predicted, scores, "
                "bottleneck, pooled, image, crc) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created, created, reason, predicted, json.dumps(scores), blob,
                    to_blob(pooled, "float32"), image, crc(blob, image),
                ),
            )  # fmt: skip
            dropped = [
                int(row[0])
                for row in db.execute(
                    "SELECT id FROM review ORDER BY id DESC LIMIT -1 OFFSET ?", (limit,)
                ).fetchall()
            ]
            db.executemany("DELETE FROM review WHERE id = ?", [(i,) for i in dropped])
        return int(cursor.lastrowid), dropped

    def seen_again(self, review_id: int, when: float) -> None:
        """One more near-duplicate of ``review_id`` was seen at ``when``."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE review SET seen = seen + 1, last_seen = ? WHERE id = ?", (when, review_id)
            )

    def delete(self, review_id: int) -> bool:
        """Drop one kept frame; False when there was none with that id."""
        with self._db.transaction() as db:
            return db.execute("DELETE FROM review WHERE id = ?", (review_id,)).rowcount > 0

    def page(self, offset: int, limit: int) -> tuple[list[ReviewItem], int]:
        """A page of kept frames, newest first, and how many there are."""
        with self._db.lock:
            total = int(self._db.query("SELECT COUNT(*) FROM review")[0][0])
            rows = self._db.query(
                "SELECT id, created, last_seen, seen, reason, predicted, scores, "
                "image IS NOT NULL FROM review ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
        return [_item(row) for row in rows], total

    def pooled(self) -> dict[int, np.ndarray]:
        """Every kept frame's pooled unit feature, by id (to merge near-duplicates)."""
        rows = self._db.query("SELECT id, pooled FROM review")
        return {
            int(i): np.frombuffer(blob, dtype=np.dtype("float32").newbyteorder("<"))
            for i, blob in rows
        }

    def frame(
        self, review_id: int, shape: tuple[int, ...]
    ) -> tuple[ReviewItem, np.ndarray, bytes | None] | None:
        """One kept frame with its bottleneck (checked) and JPEG; None when there is none;
        DamagedSampleError when its bytes are damaged."""
        rows = self._db.query(
            "SELECT id, created, last_seen, seen, reason, predicted, scores, bottleneck, image, "
            "crc FROM review WHERE id = ?",
            (review_id,),
        )
        if not rows:
            return None
        row = rows[0]
        blob, image, stored = row[7], None if row[8] is None else bytes(row[8]), row[9]
        if crc(blob, image) != stored:
            raise DamagedSampleError(self._db.path, review_id, "the kept frame's checksum fails")
        try:
            bottleneck = bottleneck_array(blob, shape)
        except ValueError:
            raise DamagedSampleError(
                self._db.path, review_id, f"the kept frame is not a {list(shape)} bottleneck"
            ) from None
        return _item(row[:7], image is not None), bottleneck, image

    def clear(self) -> None:
        """Drop every kept frame (a new bundle: their bottlenecks are of the old base)."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM review")


def _item(row: Any, has_image: bool | None = None) -> ReviewItem:
    """An item of the columns id .. scores (and, without ``has_image``, whether it has one)."""
    image = bool(row[7]) if has_image is None else has_image
    return ReviewItem(
        int(row[0]),
        float(row[1]),
        float(row[2]),
        int(row[3]),
        row[4],
        row[5],
        json.loads(row[6]),
        image,
    )
