"""Smoothing: announce a new class only after it won enough frames in a row, confidently.

As Frigate does for its objects, a single odd frame never flips the published class: a class is
*accepted* once it was the top class with at least `min_confidence` in `agree_frames` consecutive
frames, and it stays the published class until another one is accepted. Publishing is
rate-limited: a change goes out at once; an unchanged class is republished, by a frame that
agrees with it, at most every `publish_interval` seconds (0: every agreeing frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SmoothedPrediction:
    """What to publish for one frame: the accepted class and this frame's scores."""

    class_name: str
    confidence: float
    scores: Mapping[str, float]
    changed: bool
    known: bool = True


class PredictionSmoother:
    """Decides, frame by frame, which class is announced and whether to publish now."""

    def __init__(self, agree_frames: int, min_confidence: float, publish_interval: float) -> None:
        if agree_frames < 1:
            raise ValueError(f"agree_frames must be 1 or more, not {agree_frames}")
        self.agree_frames = agree_frames
        self.min_confidence = min_confidence
        self.publish_interval = publish_interval
        self._candidate: str | None = None
        self._streak = 0
        self._accepted: str | None = None
        self._accepted_known = True
        self._last_publish: float | None = None

    @property
    def accepted(self) -> str | None:
        """The class currently announced (None until one was accepted)."""
        return self._accepted

    def reset(self) -> None:
        """Forget the history (after the model was reset, for instance)."""
        self._candidate = None
        self._streak = 0
        self._accepted = None
        self._last_publish = None

    def update(
        self,
        scores: Mapping[str, float],
        now: float,
        decided: str | None = None,
        confidence: float | None = None,
        known: bool = True,
    ) -> SmoothedPrediction | None:
        """Feed one frame; returns what to publish, or None.

        ``scores`` is class -> probability. ``decided`` (with its ``confidence``) is the frame's
        class when something else than the top score decided it: the open-set test's unknown
        label (``known`` False), which counts as a candidate like a class, whatever its
        confidence.
        """
        if not scores and decided is None:
            return None
        if decided is None:
            top = max(scores, key=lambda name: scores[name])
            confidence = scores[top]
        else:
            top = decided
            confidence = float(confidence or 0.0)
        candidate = top if (not known or confidence >= self.min_confidence) else None
        if candidate is not None and candidate == self._candidate:
            self._streak += 1
        else:
            self._candidate = candidate
            self._streak = 1 if candidate is not None else 0
        changed = False
        if (
            self._candidate is not None
            and self._streak >= self.agree_frames
            and self._candidate != self._accepted
        ):
            self._accepted = self._candidate
            self._accepted_known = known
            changed = True
        if self._accepted is None:
            return None
        # Between changes, only frames that confirm the announced class are republished: a
        # frame that disagrees (not yet enough to switch) must not report the old class.
        due = changed or (
            top == self._accepted
            and (self._last_publish is None or now - self._last_publish >= self.publish_interval)
        )
        if not due:
            return None
        self._last_publish = now
        return SmoothedPrediction(
            class_name=self._accepted,
            confidence=float(confidence if top == self._accepted else 0.0),
            scores=dict(scores),
            changed=changed,
            known=self._accepted_known,
        )
