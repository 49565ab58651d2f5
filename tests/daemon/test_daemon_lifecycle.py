"""The daemon's life: online/offline, restarts, broken state, a broker or camera that goes away."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from tests.support import photos
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import write_config
from tests.support.mqtt_watch import MqttWatch, b64
from tests.support.state_db import state_digest


def sample(daemon, name: str, index: int = 0) -> dict:
    image = b64(photos.encode(photos.variant(name, index)))
    result = daemon.watch.command("sample", {"class": name, "image": image})
    assert result["ok"], result
    return result


def test_online_with_retained_status_then_offline_on_sigterm_within_5_seconds(
    run_daemon, bundle, broker
):
    daemon = run_daemon()
    status = daemon.status(predicate=lambda s: s["camera"]["ok"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert status["state"] == "idle"
    assert status["classes"] == list(CLASSES)
    assert status["samples"] == dict.fromkeys(CLASSES, 0)
    assert status["bundle"] == manifest["bundle_id"]
    assert status["version"] == "1.0.0"
    assert status["camera"]["source"].startswith("replay ")
    with MqttWatch(broker.host, broker.port, daemon.root) as late:  # retained for newcomers
        assert late.wait_for("availability").retain
        assert late.wait_for("status").json()["bundle"] == manifest["bundle_id"]
    mark = daemon.watch.mark()
    code, seconds = daemon.process.terminate()
    assert code == 0 and seconds < 5, daemon.process.log()
    assert daemon.watch.wait_for("availability", since=mark).text == "offline"
    log = daemon.process.log()
    assert "received SIGTERM: stopping" in log and "state saved to" in log


def test_a_frozen_and_thawed_daemon_goes_on_and_still_stops_on_sigterm(run_daemon):
    # SIGSTOP/SIGCONT (a debugger, the benchmark's alternating rounds) must not look like a
    # stop request, nor make the signal wait fail.
    daemon = run_daemon()
    daemon.watch.wait_for("prediction")
    os.kill(daemon.process.pid, signal.SIGSTOP)
    time.sleep(1.0)
    os.kill(daemon.process.pid, signal.SIGCONT)
    mark = daemon.watch.mark()
    daemon.watch.wait_for("prediction", since=mark, timeout=10)
    assert daemon.process.alive()
    code, _ = daemon.process.terminate()
    assert code == 0, daemon.process.log()
    assert "received SIGTERM: stopping" in daemon.process.log()


def test_kill_9_leaves_offline_through_the_last_will(run_daemon, broker):
    daemon = run_daemon()
    mark = daemon.watch.mark()
    daemon.process.kill()
    offline = daemon.watch.wait_for("availability", since=mark, timeout=15)
    assert offline.text == "offline"
    with MqttWatch(broker.host, broker.port, daemon.root) as late:
        assert late.wait_for("availability").text == "offline"  # retained


def test_samples_and_parameters_survive_a_restart(run_daemon):
    daemon = run_daemon()
    for name in CLASSES:
        sample(daemon, name)
    daemon.watch.command("train", {"action": "start"})
    daemon.watch.wait_for("loss", lambda m: m.json()["epoch"] >= 5, timeout=60)
    daemon.watch.command("train", {"action": "stop"})
    probe = b64(photos.encode(photos.photo("coffee"), "PNG"))
    before = daemon.watch.command("classify", {"image": probe})
    daemon.watch.command("save", {})
    saved = state_digest(daemon.state_file)
    assert daemon.process.terminate()[0] == 0

    again = run_daemon(root="pz/again", overrides={"state": {"dir": str(daemon.state_dir)}})
    status = again.status()
    assert status["samples"] == dict.fromkeys(CLASSES, 1)
    after = again.watch.command("classify", {"image": probe})
    assert after["scores"] == before["scores"]  # the very same parameters
    result = again.watch.command("save", {})
    assert result["ok"]
    assert state_digest(again.state_file) == saved  # samples, parameters, optimizer: identical


def test_auto_start_resumes_training_after_a_restart(run_daemon):
    daemon = run_daemon()
    sample(daemon, "cat")
    sample(daemon, "rocket")
    assert daemon.process.terminate()[0] == 0
    again = run_daemon(
        root="pz/auto",
        overrides={"state": {"dir": str(daemon.state_dir)}, "training": {"auto_start": True}},
    )
    again.status(predicate=lambda s: s["state"] == "training")
    assert again.watch.wait_for("loss", timeout=30).json()["samples"] == 2


def test_a_corrupt_state_file_is_set_aside_and_reported(run_daemon, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "state.db").write_bytes(b"SQLite format 3\x00 this is not a real state file" * 90)
    daemon = run_daemon()
    status = daemon.status()
    assert status["samples"] == dict.fromkeys(CLASSES, 0)
    assert len(status["warnings"]) == 1
    warning = status["warnings"][0]
    assert "is corrupt or not a state file" in warning and "started fresh" in warning
    aside = sorted(state.glob("state.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].name in warning
    assert aside[0].read_bytes().startswith(b"SQLite format 3\x00 this is not")
    assert "moved it to state.db.corrupt-" in daemon.process.log()
    sample(daemon, "cat")  # and it works normally afterwards
    assert daemon.saved_samples() == 1


def test_the_classes_on_the_board_win_over_a_reordered_config(run_daemon):
    daemon = run_daemon()
    sample(daemon, "cat")
    assert daemon.watch.command("class", {"rename": "coffee", "to": "tea"})["ok"]
    assert daemon.process.terminate()[0] == 0
    reordered = ["coffee", "cat", "rocket", "astronaut"]
    again = run_daemon(
        root="pz/other",
        overrides={"state": {"dir": str(daemon.state_dir)}, "model": {"classes": reordered}},
    )
    status = again.status()
    # "coffee" was renamed to "tea" on the board: the config only seeds a new state, so it
    # does not come back, and the warning says so.
    assert status["classes"] == ["cat", "tea", "rocket", "astronaut"]
    assert status["samples"] == {"cat": 1, "tea": 0, "rocket": 0, "astronaut": 0}
    assert any("'coffee'" in w and "no longer has" in w for w in status["warnings"])


def test_a_class_removed_on_the_board_stays_removed_after_a_restart(run_daemon):
    daemon = run_daemon()
    assert daemon.watch.command("class", {"remove": "coffee"})["ok"]
    assert daemon.process.terminate()[0] == 0
    again = run_daemon(root="pz/again", overrides={"state": {"dir": str(daemon.state_dir)}})
    status = again.status()
    assert status["classes"] == ["cat", "rocket", "astronaut"]
    assert any("'coffee'" in w and "no longer has" in w for w in status["warnings"])


def test_the_daemon_reconnects_when_the_broker_comes_back(run_daemon, broker):
    daemon = run_daemon()
    sample(daemon, "cat")
    daemon.watch.wait_for("prediction")
    broker.stop()
    time.sleep(2.0)
    assert daemon.process.alive()
    broker.start()
    with MqttWatch(broker.host, broker.port, daemon.root) as watch:
        # The broker lost its retained messages; the daemon republishes them on reconnect.
        watch.wait_for("availability", lambda m: m.text == "online", 40)
        watch.wait_for("prediction", timeout=10)
        image = b64(photos.encode(photos.variant("coffee", 1)))
        assert watch.command("sample", {"class": "coffee", "image": image})["count"] == 1
    with MqttWatch(broker.host, broker.port, daemon.root) as late:
        assert late.wait_for("availability").retain
        status = late.wait_for("status", timeout=10)
        assert status.retain and status.json()["samples"]["cat"] == 1


def test_a_missing_camera_is_reported_and_reopened_without_dying(run_daemon, tmp_path):
    empty = tmp_path / "later"
    empty.mkdir()
    daemon = run_daemon(frames=empty)
    status = daemon.status(
        predicate=lambda s: s["camera"]["error"] not in (None, "not started yet")
    )
    assert status["camera"]["ok"] is False
    assert "holds no .jpg/.jpeg/.png files" in status["camera"]["error"]
    refused = daemon.watch.command("sample", {"class": "cat"})
    assert refused["ok"] is False and "no camera frame yet" in refused["error"]
    photos.replay_folder(empty, ["rocket"])  # the camera "comes back"
    daemon.status(predicate=lambda s: s["camera"]["ok"], timeout=20)
    assert daemon.watch.wait_for("prediction", timeout=20).json()["frame"] >= 1
    assert daemon.watch.command("sample", {"class": "rocket"})["ok"]
    assert "retrying in" in daemon.process.log()


def test_a_damaged_bundle_exits_78_naming_the_file(tmp_path, broker, bundle, photo_frames):
    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged)
    with (damaged / "inference.tflite").open("ab") as handle:
        handle.write(b"\0")
    sections = base_sections(tmp_path, broker, damaged, photo_frames, "pz/damaged")
    config = write_config(tmp_path / "damaged.toml", sections)
    done = subprocess.run(
        [sys.executable, "-m", "personalizer", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "inference.tflite" in done.stderr


def test_the_daemon_starts_without_a_broker_and_connects_when_one_appears(
    tmp_path, bundle, photo_frames
):
    from tests.support.broker import Broker
    from tests.support.daemon_harness import start_daemon, stop

    broker = Broker()  # its port is chosen, but nothing listens yet
    daemon = start_daemon(tmp_path, broker, bundle, photo_frames, wait_online=False)
    try:
        time.sleep(2.0)
        assert daemon.process.alive()
        broker.start()
        with MqttWatch(broker.host, broker.port, daemon.root) as watch:
            watch.wait_for("availability", lambda m: m.text == "online", 40)
            watch.wait_for("prediction", timeout=10)
    finally:
        stop(daemon)
        broker.close()
