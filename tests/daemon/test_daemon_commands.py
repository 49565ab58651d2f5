"""The real daemon, the real broker, a real bundle: every command, its result and its events."""

from __future__ import annotations

import json
import time

import numpy as np

from tests.support import photos
from tests.support.daemon_harness import CLASSES
from tests.support.mqtt_watch import b64
from tests.support.photos import photo_b64
from tests.support.state_db import state_digest


def add_samples(daemon, per_class: int = 3) -> None:
    for name in CLASSES:
        result = daemon.watch.command("sample", {"class": name, "image": photo_b64(name)})
        assert result["ok"], result
        for index in range(per_class - 1):
            result = daemon.watch.command(
                "sample", {"class": name, "image": photo_b64(name, index)}
            )
            assert result["ok"], result


def test_sample_from_the_camera_is_on_disk_before_its_event(run_daemon):
    daemon = run_daemon()
    watch = daemon.watch
    on_disk_at_event = []
    watch.on_message = lambda m: (
        on_disk_at_event.append(daemon.saved_samples())
        if m.topic == watch.topic("sample")
        else None
    )
    watch.wait_for("status", lambda m: m.json()["camera"]["ok"])
    result = watch.command("sample", {"class": "cat", "request_id": "ignored"})
    assert result["ok"] is True and result["class"] == "cat" and result["count"] == 1
    assert isinstance(result["sample_id"], int)
    event = watch.wait_for("sample").json()
    assert event["class"] == "cat" and event["count"] == 1 and event["source"] == "mqtt"
    assert abs(event["ts"] - time.time()) < 30
    assert on_disk_at_event == [1]
    status = daemon.status(predicate=lambda s: s["samples"]["cat"] == 1)
    assert status["samples"] == {"cat": 1, "coffee": 0, "rocket": 0, "astronaut": 0}
    assert daemon.state_file.stat().st_mode & 0o777 == 0o600
    assert daemon.state_dir.stat().st_mode & 0o777 == 0o700


def test_train_classify_reset_and_save_commands(run_daemon):
    daemon = run_daemon(overrides={"training": {"epochs_per_cycle": 4}})
    watch = daemon.watch
    empty = watch.command("train", {"action": "start"})
    assert empty["ok"] is False and "no samples to train on" in empty["error"]
    add_samples(daemon, per_class=2)
    mark = watch.mark()
    started = watch.command("train", {"action": "start"})
    assert started == {"ok": True, "request_id": started["request_id"], "state": "training"}
    daemon.status(since=mark, predicate=lambda s: s["state"] == "training")
    # epochs_per_cycle = 4: four loss events, then training stops by itself.
    daemon.status(since=mark, predicate=lambda s: s["state"] == "idle", timeout=60)
    losses = [m.json() for m in watch.received("loss", since=mark)]
    assert [loss["epoch"] for loss in losses] == [1, 2, 3, 4]
    assert all(loss["samples"] == 8 and loss["loss"] > 0 for loss in losses)
    stopped = watch.command("train", {"action": "stop"})
    assert stopped["ok"] and stopped["state"] == "idle"

    classified = watch.command("classify", {"image": photo_b64("rocket")})
    assert classified["ok"] and classified["class"] == "rocket"
    assert set(classified["scores"]) == set(CLASSES)
    assert abs(sum(classified["scores"].values()) - 1) < 1e-3
    assert classified["confidence"] == max(classified["scores"].values())

    cleared = watch.command("reset", {"class": "coffee"})
    assert cleared["ok"] and cleared["removed"] == 2
    assert cleared["samples"] == {"cat": 2, "coffee": 0, "rocket": 2, "astronaut": 2}
    saved = watch.command("save", {})
    assert saved["ok"] and saved["path"] == str(daemon.state_file)
    assert saved["bytes"] >= daemon.state_file.stat().st_size > 0
    assert daemon.saved_samples() == 6
    everything = watch.command("reset", {"all": True})
    assert everything["ok"] and everything["samples"] == dict.fromkeys(CLASSES, 0)
    assert daemon.saved_samples() == 0


def test_bad_commands_get_ok_false_with_a_reason_and_change_nothing(run_daemon):
    daemon = run_daemon(overrides={"mqtt": {"max_payload_bytes": 65536}})
    watch = daemon.watch
    assert watch.command("sample", {"class": "cat", "image": photo_b64("cat", 0)})["ok"]
    before = state_digest(daemon.state_file)
    garbage = b64(np.random.default_rng(1).bytes(3000))
    huge = b64(
        photos.encode(np.random.default_rng(2).integers(0, 255, (200, 200, 3), np.uint8), "PNG")
    )
    cases = [
        ("sample", "not json at all", "payload is not JSON"),
        ("sample", {"class": 7}, '"class" must be a string, not int'),
        ("sample", {"class": "dog"}, 'unknown class "dog"'),
        ("sample", {"class": "cat", "image": garbage}, "image is not a JPEG, PNG or WebP"),
        ("classify", {"image": "@@@"}, "image is not valid base64"),
        # Refused before it is even parsed, so no request_id can come back.
        ("classify", json.dumps({"image": huge}), "more than the limit of 65536"),
        ("train", {"action": "faster"}, '"action" must be "start" or "stop"'),
        ("reset", {"class": "cat", "all": True}, "reset needs either"),
        ("explode", {}, 'unknown command "explode"'),
    ]
    for name, payload, reason in cases:
        result = watch.command(name, payload)
        assert result["ok"] is False, (name, payload, result)
        assert reason in result["error"], (reason, result)
        if isinstance(payload, dict):
            assert result["request_id"] is not None
    assert state_digest(daemon.state_file) == before
    assert watch.received("sample")[-1].json()["count"] == 1
    status = daemon.status(predicate=lambda s: s["samples"]["cat"] == 1)
    assert sum(status["samples"].values()) == 1
    assert daemon.process.alive()


def test_predictions_after_training_on_distinct_photos_are_right(run_daemon):
    daemon = run_daemon(overrides={"camera": {"fps": 8.0}})
    watch = daemon.watch
    add_samples(daemon, per_class=3)
    mark = watch.mark()
    watch.command("train", {"action": "start"})
    watch.wait_for("loss", lambda m: m.json()["loss"] < 0.05, timeout=120, since=mark)
    watch.command("train", {"action": "stop"})
    time.sleep(1.0)
    mark = watch.mark()
    time.sleep(3.0)
    predictions = [m.json() for m in watch.received("prediction", since=mark)]
    assert len(predictions) >= 12  # every frame at 8 fps, classified and published
    for prediction in predictions:
        # Replay frame n shows photo (n - 1) % 4 of the folder, which is in CLASSES order.
        shown = CLASSES[(prediction["frame"] - 1) % len(CLASSES)]
        assert prediction["class"] == shown, prediction
        assert prediction["confidence"] == prediction["scores"][shown] > 0.5
        assert set(prediction["scores"]) == set(CLASSES)
    frames = [p["frame"] for p in predictions]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
