"""Smoothing: a class is announced only after N confident frames in a row (as Frigate does)."""

from __future__ import annotations

import pytest

from personalizer.inference import PredictionSmoother


def feed(smoother: PredictionSmoother, top: str, p: float, now: float):
    other = "b" if top == "a" else "a"
    return smoother.update({top: p, other: 1 - p}, now)


def test_a_class_is_announced_after_n_agreeing_confident_frames():
    smoother = PredictionSmoother(agree_frames=3, min_confidence=0.6, publish_interval=100)
    assert feed(smoother, "a", 0.9, 0) is None
    assert feed(smoother, "a", 0.9, 1) is None
    announced = feed(smoother, "a", 0.8, 2)
    assert announced is not None and announced.class_name == "a" and announced.changed
    assert announced.confidence == 0.8 and announced.scores == pytest.approx({"a": 0.8, "b": 0.2})


def test_low_confidence_or_a_broken_streak_announces_nothing_new():
    smoother = PredictionSmoother(agree_frames=2, min_confidence=0.7, publish_interval=100)
    for t in range(5):
        assert feed(smoother, "a", 0.65, t) is None  # never confident enough
    assert feed(smoother, "a", 0.9, 5) is None
    assert feed(smoother, "b", 0.9, 6) is None  # streak broken
    assert feed(smoother, "a", 0.9, 7) is None
    assert feed(smoother, "a", 0.9, 8).class_name == "a"
    # One odd frame of b does not flip the announced class.
    assert feed(smoother, "b", 0.95, 9) is None
    assert smoother.accepted == "a"
    changed = feed(smoother, "b", 0.95, 10)
    assert changed.class_name == "b" and changed.changed


def test_unchanged_class_is_republished_only_every_publish_interval():
    smoother = PredictionSmoother(agree_frames=1, min_confidence=0.6, publish_interval=1.0)
    assert feed(smoother, "a", 0.9, 0.0).changed
    assert feed(smoother, "a", 0.9, 0.5) is None
    again = feed(smoother, "a", 0.9, 1.0)
    assert again is not None and not again.changed
    # A frame that disagrees (too unsure to switch) republishes nothing, even when due...
    assert feed(smoother, "b", 0.55, 2.5) is None
    assert smoother.accepted == "a"
    # ...the next agreeing frame does, with its own confidence.
    assert feed(smoother, "a", 0.7, 2.6).confidence == 0.7


def test_interval_zero_publishes_every_frame_and_reset_forgets():
    smoother = PredictionSmoother(agree_frames=1, min_confidence=0.0, publish_interval=0)
    assert all(feed(smoother, "a", 0.6, t / 10) is not None for t in range(5))
    smoother.reset()
    assert smoother.accepted is None
