"""Thousands of bad MQTT commands through the real broker to the real daemon process.

600 generated payloads for each of the 11 commands and for unknown commands, sent with QoS 1
and paced so the daemon's command queue never fills: every one gets a result with `ok: false`
and a reason, the daemon stays up, and its state (samples, parameters, optimizer state: what
its state database holds) is exactly what it was before.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from personalizer.commands import COMMAND_NAMES
from tests.support.bad_payloads import (
    CLASSES,
    MAX_IMAGE_PIXELS,
    MAX_PAYLOAD_BYTES,
    UNKNOWN_COMMANDS,
    bad_payloads,
)
from tests.support.broker import Broker
from tests.support.daemon_harness import Daemon, start_daemon
from tests.support.mqtt_watch import Message
from tests.support.state_db import state_digest

PER_COMMAND = 600
IN_FLIGHT = 12  # below the daemon's command queue (32), so "busy" never happens
SEED = 20261125


class ResultCounter:
    """Counts `cmd/<name>/result` messages and keeps the refused ones' reasons."""

    def __init__(self, root: str) -> None:
        self.prefix = f"{root}/cmd/"
        self.condition = threading.Condition()
        self.total = 0
        self.results: list[tuple[str, dict]] = []

    def __call__(self, message: Message) -> None:
        if message.topic.startswith(self.prefix) and message.topic.endswith("/result"):
            name = message.topic[len(self.prefix) : -len("/result")]
            with self.condition:
                self.results.append((name, message.json()))
                self.total += 1
                self.condition.notify_all()

    def wait_until(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` results arrived."""
        with self.condition:
            return self.condition.wait_for(lambda: self.total >= count, timeout)


def _fuzz(daemon: Daemon, counter: ResultCounter) -> tuple[Counter, float]:
    sent: Counter = Counter()
    started = time.monotonic()
    for command in (*COMMAND_NAMES, "unknown"):
        for index, payload in enumerate(bad_payloads(command, PER_COMMAND, SEED)):
            name = (
                UNKNOWN_COMMANDS[index % len(UNKNOWN_COMMANDS)] if command == "unknown" else command
            )
            assert counter.wait_until(sum(sent.values()) - IN_FLIGHT, 30), (
                f"the daemon stopped answering after {counter.total} results; "
                f"log:\n{daemon.process.log()[-3000:]}"
            )
            daemon.watch.publish(f"cmd/{name}", payload.data, qos=1)
            sent[command] += 1
    total = sum(sent.values())
    assert counter.wait_until(total, 60), f"{counter.total} of {total} results arrived"
    return sent, time.monotonic() - started


def test_thousands_of_bad_commands_are_refused_and_change_nothing(
    tmp_path: Path, bundle: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    with Broker() as broker:
        daemon = start_daemon(
            tmp_path,
            broker,
            bundle,
            photo_frames,
            root="pz/fuzz",
            overrides={
                "inference": {"rate": 1.0},
                "mqtt": {
                    "max_payload_bytes": MAX_PAYLOAD_BYTES,
                    "max_image_pixels": MAX_IMAGE_PIXELS,
                },
            },
        )
        daemons.append(daemon)
        assert tuple(daemon.sections["model"]["classes"]) == CLASSES
        # A state worth protecting: samples of two classes, imprinted parameters, saved.
        daemon.watch.wait_for("prediction", timeout=30)  # the camera delivers frames
        for class_name in ("cat", "coffee", "cat"):
            result = daemon.watch.command("sample", {"class": class_name})
            assert result["ok"], result
        saved = daemon.watch.command("save", {})
        assert saved["ok"], saved
        before = state_digest(daemon.state_file)
        samples_before = daemon.status()["samples"]

        counter = ResultCounter(daemon.root)
        daemon.watch.on_message = counter
        sent, seconds = _fuzz(daemon, counter)
        daemon.watch.on_message = None

        assert daemon.process.alive(), daemon.process.log()[-3000:]
        received = Counter(
            "unknown" if name in UNKNOWN_COMMANDS else name for name, _ in counter.results
        )
        assert received == sent
        accepted = [(name, r) for name, r in counter.results if r.get("ok") is not False]
        assert not accepted, f"{len(accepted)} bad commands were accepted: {accepted[:5]}"
        reasons = Counter(str(r.get("error", ""))[:48] for _, r in counter.results)
        assert all(reason.strip() for reason in reasons), "a refusal without a reason"
        internal = [r for r in reasons if r.startswith(("internal error", "busy"))]
        assert not internal, internal
        errors = " ".join(str(r.get("error")) for _, r in counter.results)
        for limit in ("mqtt.max_image_pixels", "mqtt.max_payload_bytes", "nested too deeply"):
            assert limit in errors, f"no payload was refused for {limit}"

        # Nothing was saved, and what is in memory is still what was saved before.
        assert state_digest(daemon.state_file) == before
        mark = daemon.watch.mark()
        assert daemon.watch.command("save", {})["ok"]
        assert state_digest(daemon.state_file) == before
        status = daemon.status(since=0, predicate=lambda s: True)
        assert status["samples"] == samples_before
        assert status["state"] == "idle"
        assert daemon.watch.received("sample", since=mark) == []
        assert "Traceback" not in daemon.process.log()
        print(
            f"\nfuzz: sent {dict(sent)} ({sum(sent.values())} messages) in {seconds:.1f} s; "
            f"{counter.total} results, all ok: false; {len(reasons)} distinct reasons"
        )
