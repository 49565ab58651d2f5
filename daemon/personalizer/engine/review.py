"""The board asks: frames it was unsure of are kept for the maker to label.

A frame is kept when the board could not tell (:func:`why_unsure`):

- ``unknown``: none of the taught classes (the open-set test); on a board taught nothing yet
  every frame is unknown, and none is kept;
- ``close call``: the two best classes were within :data:`CLOSE` of each other;
- ``unlike its samples``: it passed as a class, but it is less like that class than any of the
  class's own samples are (a new light, night vision: a head taught in daylight is confidently
  wrong on grey IR frames, and "known" says nothing then).

What is kept is bounded: at most :data:`KEEP_EVERY` seconds between two frames kept for the
same reason (a scene that stays unknown does not flood it), near-duplicates (pooled cosine of
:data:`SAME` or more to a kept frame) only count as seen again, and at most :data:`LIMIT` frames
stay, the oldest dropped. The frame thread only decides from what the classification already
has and hands the frame on (:meth:`ReviewKeeper.consider`): nothing else happens on the frame
path when nothing is kept. The command thread encodes the crop and stores it
(:meth:`ReviewKeeper.keep`); a label turns a kept frame into a sample with its stored
bottleneck, without running the base model again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..images import encode_image
from ..model import Classification, TransferLearningModel
from ..model.open_set import Calibration
from ..model.pooled import pooled, unit
from ..store import StateStore

log = logging.getLogger(__name__)

CLOSE = 0.2  # the two best classes' probabilities this close: a close call
KEEP_EVERY = 10.0  # seconds between two frames kept for the same reason
SAME = 0.95  # pooled cosine at which a frame is one already kept, seen again
LIMIT = 200  # frames kept at most
CROP_SIZE = 224
CROP_QUALITY = 85
UNKNOWN, CLOSE_CALL, UNLIKE = "unknown", "close call", "unlike its samples"


def lowest_own(calibration: Calibration) -> dict[int, float]:
    """Per class slot: the least any of its own samples is like the class (leave-one-out)."""
    lowest: dict[int, float] = {}
    for value, slot in zip(calibration.similarities, calibration.similarity_slots, strict=True):
        lowest[slot] = min(value, lowest.get(slot, value))
    return lowest


def why_unsure(
    result: Classification, lowest: dict[str, float], close: float = CLOSE
) -> str | None:
    """Why the board was unsure of a frame (see the module doc), or None. ``lowest`` maps a
    class to the least any of its samples is like it."""
    if not result.known:
        return UNKNOWN if result.closest is not None else None  # None: nothing taught yet
    best = sorted(result.scores.values(), reverse=True)[:2]
    if len(best) == 2 and best[0] - best[1] < close:
        return CLOSE_CALL
    floor = lowest.get(result.closest or "")
    if floor is not None and result.similarity < floor:
        return UNLIKE
    return None


class ReviewKeeper:
    """Decides which frames to keep for review and keeps them (see the module doc)."""

    def __init__(
        self,
        model: TransferLearningModel,
        store: StateStore,
        announce: Callable[[], None],
        defer: Callable[[Callable[[], None]], Any],
    ) -> None:
        """Keeps frames of ``model`` in ``store``; ``announce()`` republishes the status;
        ``defer(work)`` runs ``work`` in the command thread."""
        self._model = model
        self._store = store
        self._announce = announce
        self.defer = defer
        self._last: dict[str, float] = {}  # reason -> when a frame was last kept for it
        self._lowest: tuple[Calibration | None, dict[str, float]] = (None, {})
        self._kept: dict[int, np.ndarray] = {}  # id -> pooled unit feature (command thread)

    @property
    def pending(self) -> int:
        """How many frames wait for a label."""
        return len(self._kept)

    def load(self) -> None:
        """Take the kept frames of the state (after it was opened or reloaded)."""
        self._kept = self._store.review.pooled()

    def _lowest_by_name(self) -> dict[str, float]:
        calibration = self._model.open_set(current=False)
        if self._lowest[0] is not calibration:
            slots = self._model.class_slots()
            named = {slots[s]: v for s, v in lowest_own(calibration).items() if s in slots}
            self._lowest = (calibration, named)
        return self._lowest[1]

    def consider(self, image: np.ndarray, result: Classification) -> None:
        """In the frame thread: hand the frame on to be kept when the board was unsure of it."""
        reason = why_unsure(result, self._lowest_by_name())
        if reason is None or result.bottleneck is None:
            return
        now = time.monotonic()
        if now - self._last.get(reason, -KEEP_EVERY) < KEEP_EVERY:
            return
        self._last[reason] = now
        seen = time.time()
        self.defer(lambda: self.keep(image, result, reason, seen))

    def keep(self, image: np.ndarray, result: Classification, reason: str, seen: float) -> None:
        """In the command thread: keep the frame, or count it as seen again when it is like a
        frame kept already."""
        channels = self._model.bottleneck_shape[-1]
        feature = unit(pooled(result.bottleneck, channels)[None])[0].astype(np.float32)
        for review_id, kept in self._kept.items():
            if float(np.dot(kept, feature)) >= SAME:
                self._count_again(review_id, seen)
                return
        jpeg = None
        if self._store.store_images:  # false keeps no pictures, of samples or of these
            crop = self._model.crop(image, CROP_SIZE)
            jpeg = None if crop is None else encode_image(crop, "JPEG", CROP_QUALITY)
        top = sorted(result.scores.items(), key=lambda kv: kv[1], reverse=True)[:3]

        def add(db: Any) -> tuple[int, list[int]]:
            return db.review.add(
                created=seen,
                reason=reason,
                predicted=result.class_name,
                scores={name: round(p, 4) for name, p in top},
                bottleneck=np.asarray(result.bottleneck).reshape(self._model.bottleneck_shape),
                pooled=feature,
                image=jpeg,
                limit=LIMIT,
            )

        try:
            review_id, dropped = self._store.write("keeping a frame for review", add)
        except OSError as exc:  # the status says the write failed; the frame is let go
            log.warning("a frame for review could not be kept: %s", exc)
            return
        self._kept[review_id] = feature
        for gone in dropped:
            self._kept.pop(gone, None)
        log.info("kept frame %d for review: %s (%s)", review_id, reason, result.class_name)
        self._announce()

    def _count_again(self, review_id: int, seen: float) -> None:
        try:
            self._store.write(
                "counting a kept frame", lambda db: db.review.seen_again(review_id, seen)
            )
        except OSError as exc:  # only a count: the status says the write failed
            log.warning("a kept frame could not be counted again: %s", exc)

    def forget(self, review_id: int) -> bool:
        """Drop one kept frame (labelled or dismissed); False when there was none."""
        done = bool(
            self._store.write("dropping a kept frame", lambda db: db.review.delete(review_id))
        )
        self._kept.pop(review_id, None)
        self._announce()
        return done
