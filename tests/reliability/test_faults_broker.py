"""The broker goes away (down at start, restarted mid-run, stopped during a burst of publishes):
the real daemon reconnects with backoff, republishes availability and status, answers commands
again and never exits; subscribers see `offline` when the daemon is killed."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.daemon_harness import CLASSES, start_daemon, stop
from tests.support.mqtt_watch import MqttWatch
from tests.support.state_db import saved_counts


class RefusingBroker:
    """Listens on the broker's port and hangs up on every connection, counting the attempts."""

    def __init__(self, port: int) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.attempts: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.attempts.append(time.monotonic())
            conn.close()

    def close(self) -> None:
        """Stop listening (frees the port for the real broker)."""
        self._done.set()
        self._thread.join(2)
        self.server.close()


def test_broker_down_at_start_is_retried_with_backoff_then_used(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> None:
    broker.stop()
    refusing = RefusingBroker(broker.port)
    daemon = start_daemon(
        tmp_path, broker, bundle, photo_frames, "pz/faults-down", wait_online=False
    )
    try:
        time.sleep(8.0)
        refusing.close()
        assert daemon.process.alive(), daemon.process.log()
        # 1 s doubling: about 4 attempts in 8 s, never a busy loop.
        assert 2 <= len(refusing.attempts) <= 6, refusing.attempts
        gaps = [b - a for a, b in zip(refusing.attempts, refusing.attempts[1:], strict=False)]
        assert min(gaps) >= 0.8 and gaps[-1] >= 1.5 * gaps[0], f"no backoff: {gaps}"
        broker.start()
        daemon.watch.start()
        daemon.watch.wait_for("availability", lambda m: m.text == "online", timeout=40)
        assert daemon.status()["samples"] == dict.fromkeys(CLASSES, 0)
        assert daemon.watch.command("sample", {"class": CLASSES[0]})["ok"]
    finally:
        refusing.close()
        stop(daemon)


def test_broker_restarts_and_cuts_during_a_burst_are_survived(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> None:
    # Training until stopped: it must still be on after every cut.
    until_stopped = {"training": {"until_stopped": True}}
    daemon = start_daemon(tmp_path, broker, bundle, photo_frames, "pz/faults-cut", until_stopped)
    watch = daemon.watch
    try:
        daemon.status(predicate=lambda s: s["camera"]["ok"])  # a frame to take as a sample
        assert watch.command("sample", {"class": CLASSES[0]})["ok"]
        assert watch.command("train", {"action": "start"})["ok"]
        for cut in range(2):
            mark = watch.mark()
            for i in range(60):  # a burst: samples and commands while predictions stream
                name = CLASSES[i % len(CLASSES)]
                watch.client.publish(watch.topic("cmd/sample"), json.dumps({"class": name}), qos=1)
                if i == 30:
                    broker.stop()  # the connection is cut in the middle of the burst
                time.sleep(0.01)
            assert watch.received("prediction", since=mark), "no predictions before the cut"
            time.sleep(2.0 + cut)
            assert daemon.process.alive(), daemon.process.log()
            mark = watch.mark()
            broker.start()
            watch.wait_for("availability", lambda m: m.text == "online", timeout=40, since=mark)
            status = watch.wait_for("status", since=mark).json()
            assert status["state"] == "training"
            result = watch.command("classify", {"image": "not an image"})
            assert result["ok"] is False and result["error"], result
            assert watch.command("sample", {"class": CLASSES[1]})["ok"]
            watch.wait_for("prediction", since=mark)
        log = daemon.process.log()
        assert log.count("MQTT: lost the connection") >= 2, log
        assert log.count("MQTT: connected to") >= 3, log
        acknowledged: dict[str, int] = dict.fromkeys(CLASSES, 0)
        for message in watch.received("sample"):
            event = message.json()
            acknowledged[event["class"]] = max(acknowledged[event["class"]], event["count"])
        daemon.process.kill()  # no clean stop: only what was saved counts
        on_disk = saved_counts(daemon.state_file)
        for name in CLASSES:
            assert on_disk[name] >= acknowledged[name], (name, on_disk, acknowledged)
        with MqttWatch(broker.host, broker.port, daemon.root) as late:
            # A subscriber that comes later still learns the daemon is gone (retained will).
            late.wait_for("availability", lambda m: m.text == "offline", timeout=20)
    finally:
        stop(daemon)
