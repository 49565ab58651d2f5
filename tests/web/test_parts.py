"""The page's parts on their own: sessions, login throttling, the live view's encoder, the feed."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import numpy as np
from PIL import Image
from pydantic import SecretStr

from personalizer.camera import LatestFrame
from personalizer.events import CameraStatus, LossEvent, PredictionEvent, StatusReport
from personalizer.web.auth import LoginThrottle, Sessions, password_matches, tokens_match
from personalizer.web.feed import LiveFeed
from personalizer.web.frames import FrameEncoder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_when_idle_too_long_after_their_lifetime_and_beyond_the_limit():
    clock = Clock()
    sessions = Sessions(idle=60, lifetime=300, limit=3, clock=clock)
    first = sessions.create()
    assert sessions.get(first.id) is first and first.csrf != first.id
    assert len(first.id) >= 43 and len(first.csrf) >= 43  # 256 random bits each
    clock.now += 59
    assert sessions.get(first.id) is first  # seen: the idle time starts again
    clock.now += 61
    assert sessions.get(first.id) is None
    second = sessions.create()
    for _ in range(5):  # used all along, it still ends after its lifetime
        clock.now += 59
        assert sessions.get(second.id) is second
    clock.now += 59
    assert sessions.get(second.id) is None
    made = [sessions.create() for _ in range(4)]
    assert sessions.get(made[0].id) is None and all(sessions.get(s.id) for s in made[1:])
    sessions.end(made[1].id)
    assert sessions.get(made[1].id) is None
    assert sessions.get(None) is None and sessions.get("") is None and sessions.get("x") is None


def test_login_throttle_backs_off_per_client_up_to_a_limit():
    clock = Clock()
    throttle = LoginThrottle(free=3, first=1.0, longest=8.0, clients=2, clock=clock)
    lockouts = [throttle.failed("a") for _ in range(8)]
    assert lockouts == [0, 0, 0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert throttle.retry_after("a") == 8.0 and throttle.retry_after("b") == 0
    clock.now += 8.0
    assert throttle.retry_after("a") == 0
    throttle.succeeded("a")
    assert throttle.failures("a") == 0 and throttle.failed("a") == 0
    throttle.failed("b")
    throttle.failed("c")  # only the 2 most recent clients are remembered
    assert throttle.failures("a") == 0 and throttle.failures("c") == 1


def test_passwords_and_tokens_are_compared_exactly():
    secret = SecretStr("s3cret")
    assert password_matches("s3cret", secret)
    assert not password_matches("s3cret ", secret) and not password_matches("", secret)
    assert not password_matches("\udcff", secret)  # a lone surrogate is just wrong, no crash
    assert tokens_match("abc", "abc")
    assert not tokens_match(None, "abc") and not tokens_match("", "abc")
    assert not tokens_match("abd", "abc")


def _frame(frames: LatestFrame, width: int, height: int, value: int = 100):
    return frames.put(np.full((height, width, 3), value, np.uint8))


def test_the_encoder_scales_to_640_and_encodes_each_frame_once():
    frames = LatestFrame()
    encoder = FrameEncoder()
    assert encoder.encoded == 0 and not encoder.watching
    big = _frame(frames, 1920, 1080)
    encoded = encoder.encode(big)
    assert (encoded.width, encoded.height) == (640, 360)
    with Image.open(io.BytesIO(encoded.jpeg)) as image:
        assert image.format == "JPEG" and image.size == (640, 360)
    assert encoder.encode(big) is encoded and encoder.encoded == 1  # a second viewer: cached
    small = _frame(frames, 320, 240)
    assert (encoder.encode(small).width, encoder.encoded) == (320, 2)
    assert encoder.watching


def _status(samples: int) -> StatusReport:
    return StatusReport("idle", ("a", "b"), {"a": samples, "b": 0}, "id", "1",
                        CameraStatus("replay", True))  # fmt: skip


def test_the_feed_gives_a_snapshot_first_and_coalesces_predictions():
    feed = LiveFeed(push_interval=0.2)
    feed.status(_status(1))  # before any page: kept for the snapshot
    feed.loss(LossEvent(0.5, 1, 1, 0.0))

    async def scenario() -> list[tuple[str, str]]:
        feed.attach(asyncio.get_running_loop())
        subscriber = feed.subscribe()

        def daemon_threads() -> None:
            for number in range(200):  # a fast frame loop and short epochs, other threads
                feed.prediction(PredictionEvent("a", 0.9, {"a": 0.9, "b": 0.1}, 0.0, number))
                if number % 4 == 0:
                    feed.loss(LossEvent(1.0 / (number + 1), number // 4 + 2, 3, 0.0))
            feed.status(_status(2))

        thread = threading.Thread(target=daemon_threads)
        thread.start()
        thread.join()
        await asyncio.sleep(0.5)
        items = []
        while not subscriber.queue.empty():
            items.append(subscriber.queue.get_nowait())
        feed.unsubscribe(subscriber)
        feed.attach(None)
        return items

    # In a thread of its own, as in the daemon (and Playwright's loop may run in this one).
    result: list[list[tuple[str, str]]] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(scenario())))
    runner.start()
    runner.join(30)
    items = result[0]
    names = [name for name, _ in items]
    assert names[:2] == ["status", "losses"]
    assert '"samples":{"a":1,"b":0}' in items[0][1] and '"loss":0.5' in items[1][1]
    predictions = [data for name, data in items if name == "prediction"]
    assert 1 <= len(predictions) <= 2  # 200 predictions in a burst, at most one per 0.2 s
    assert '"frame":199' in predictions[-1]  # the newest wins
    losses = [json.loads(data) for name, data in items if name == "loss"]
    assert 1 <= len(losses) <= 2  # 50 losses in as few events
    assert [loss["epoch"] for batch in losses for loss in batch] == list(range(2, 52))
    assert any(name == "status" and '"a":2' in data for name, data in items[2:])


def test_the_feed_costs_nothing_without_pages():
    feed = LiveFeed()
    for number in range(1000):
        feed.prediction(PredictionEvent("a", 0.9, {"a": 0.9}, 0.0, number))
    assert feed.pages == 0
    snapshot = dict(feed.snapshot())
    assert '"frame":999' in snapshot["prediction"] and snapshot["losses"] == "[]"


def test_the_feed_drops_the_losses_once_every_sample_is_forgotten():
    feed = LiveFeed()
    feed.status(_status(3))
    for epoch in range(1, 4):
        feed.loss(LossEvent(1.0 / epoch, epoch, 3, 0.0))
    assert json.loads(dict(feed.snapshot())["losses"])[-1]["epoch"] == 3
    feed.status(_status(0))  # a reset of everything: the chart was of a head that is gone
    assert dict(feed.snapshot())["losses"] == "[]"
    feed.loss(LossEvent(0.7, 1, 2, 0.0))  # training again after new samples
    feed.status(_status(2))
    assert [loss["epoch"] for loss in json.loads(dict(feed.snapshot())["losses"])] == [1]
