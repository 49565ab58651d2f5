"""The installed aarch64 daemon, started as its unit says, learning over MQTT from the host.

The root shares the host's network namespace, so the daemon in the chroot reaches a mosquitto
started here on 127.0.0.1. The bundle goes where the README says (/etc/personalizer/bundle), the
config is the installed file edited as a user would, and a replay folder stands in for the camera.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.arm64.conftest import VENV
from tests.arm64.plan import Suite
from tests.arm64.roots import Chroot
from tests.arm64.service import InstalledService
from tests.support import photos
from tests.support.broker import Broker
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.daemon_harness import CLASSES
from tests.support.daemon_process import write_config
from tests.support.mqtt_watch import MqttWatch, b64

CONFIG = "/etc/personalizer/personalizer.toml"
# Emulated Python: importing numpy, pydantic and the interpreter and loading the bundle take
# tens of seconds, a command a few; these bounds leave room for a loaded CI machine.
START_TIMEOUT = 400.0
COMMAND_TIMEOUT = 180.0
SAMPLES_PER_CLASS = 2


@dataclass
class Board:
    """The root with the daemon's config, bundle and camera folder in place, and a broker."""

    root: Chroot
    suite: Suite
    broker: Broker
    topic_root: str
    log: Path

    def start(self, watch: MqttWatch) -> InstalledService:
        """Start the installed service and wait until it says online (or fail once it exits)."""
        since = watch.mark()
        service = InstalledService(self.root, self.log).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                watch.wait_for("availability", lambda m: m.text == "online", 5.0, since)
                return service
            except TimeoutError:
                if not service.alive():
                    code = service.process.returncode if service.process else None
                    message = f"the daemon exited ({code}) before it came online; its log:\n"
                elif time.monotonic() > deadline:
                    service.close()
                    message = f"the daemon did not come online in {START_TIMEOUT} s; its log:\n"
                else:
                    continue
                raise AssertionError(message + service.log()) from None


@pytest.fixture
def board(root: Chroot, suite: Suite, logs: Path) -> Iterator[Board]:
    """Bundle, replay frames and config in the root; a mosquitto on the host's loopback."""
    bundle = root.host_path("/etc/personalizer/bundle")
    shutil.rmtree(bundle, ignore_errors=True)
    # Copied as the README says (`cp -r`): the service user must be able to read what arrives.
    subprocess.run(["cp", "-r", str(build_bundle(BundleSpec())), str(bundle)], check=True)
    frames = root.host_path("/srv/replay")
    shutil.rmtree(frames, ignore_errors=True)
    photos.replay_folder(frames, list(CLASSES))
    topic_root = f"pz/arm64-{suite.name}"
    log = logs / f"{suite.name}-daemon.log"
    log.unlink(missing_ok=True)
    with Broker() as broker:
        sections = {
            "model": {"bundle": "/etc/personalizer/bundle", "classes": list(CLASSES)},
            "camera": {"source": "replay", "path": "/srv/replay", "fps": 2.0, "width": 320,
                       "height": 240},
            "inference": {"rate": 1.0, "agree_frames": 1, "min_confidence": 0.0,
                          "publish_interval": 0.0},
            "training": {"min_epoch_interval": 0.0, "autosave_interval": 5.0},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": topic_root,
                     "client_id": f"arm64-{suite.name}", "keepalive": 10},
            "state": {"dir": "/var/lib/personalizer"},
        }  # fmt: skip
        # Rewritten in place: the installed file's owner and mode (root:personalizer 0640) stay.
        write_config(root.host_path(CONFIG), sections)
        yield Board(root, suite, broker, topic_root, log)


def _sample(watch: MqttWatch, name: str, index: int) -> dict:
    image = b64(photos.encode(photos.variant(name, index)))
    result = watch.command("sample", {"class": name, "image": image}, timeout=COMMAND_TIMEOUT)
    assert result["ok"], result
    return result


def assert_quiet(log: str) -> None:
    """The installed daemon's log holds no warning, error or traceback: a board's journal shows
    only what is worth a look (numpy 2 on arm64 once logged three spurious floating-point
    warnings per sample)."""
    noisy = [
        line
        for line in log.splitlines()
        if line.startswith(("WARNING ", "ERROR ", "CRITICAL "))
        or "Traceback" in line
        or "Warning:" in line
    ]
    assert not noisy, "the daemon's log is not quiet:\n" + "\n".join(noisy)


def test_config_checks_as_the_service_user(board: Board) -> None:
    done = board.root.run(
        [f"{VENV}/bin/personalizer", "check-config", "--config", CONFIG],
        user="personalizer",
        cwd="/var/lib/personalizer",
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_installed_daemon_learns_over_mqtt_and_keeps_its_samples_across_a_restart(
    board: Board,
) -> None:
    with MqttWatch(board.broker.host, board.broker.port, board.topic_root) as watch:
        service = board.start(watch)
        try:
            log = service.log()
            assert f"using TFLite runtime {board.suite.runtime_module} " in log, log

            for index in range(SAMPLES_PER_CLASS):
                for name in CLASSES:
                    assert _sample(watch, name, index)["count"] == index + 1

            since = watch.mark()
            started = watch.command("train", {"action": "start"}, timeout=COMMAND_TIMEOUT)
            assert started["ok"], started
            loss = watch.wait_for(
                "loss", lambda m: m.json()["epoch"] >= 3, timeout=START_TIMEOUT, since=since
            ).json()
            assert math.isfinite(loss["loss"]) and loss["samples"] == len(CLASSES) * 2
            stopped = watch.command("train", {"action": "stop"}, timeout=COMMAND_TIMEOUT)
            assert stopped["ok"], stopped
            watch.wait_for(
                "status", lambda m: m.json()["state"] == "idle", timeout=COMMAND_TIMEOUT,
                since=since,
            )  # fmt: skip

            probe = b64(photos.encode(photos.photo("coffee"), "PNG"))
            before = watch.command("classify", {"image": probe}, timeout=COMMAND_TIMEOUT)
            assert before["ok"], before
            assert set(before["scores"]) == set(CLASSES)
            assert math.isclose(sum(before["scores"].values()), 1.0, rel_tol=1e-4)

            since = watch.mark()
            code, seconds = service.terminate(timeout=120)
            assert code == 0, service.log()
            assert_quiet(service.log())
            offline = watch.wait_for("availability", since=since, timeout=30)
            assert offline.text == "offline"
            print(f"{board.suite.name}: SIGTERM to exit 0 in {seconds:.1f} s")
        finally:
            service.close()

        since = watch.mark()  # the retained status of the first run does not count
        again = board.start(watch)
        try:
            expected = dict.fromkeys(CLASSES, SAMPLES_PER_CLASS)
            watch.wait_for(
                "status",
                lambda m: m.json()["samples"] == expected,
                timeout=COMMAND_TIMEOUT,
                since=since,
            )
            after = watch.command("classify", {"image": probe}, timeout=COMMAND_TIMEOUT)
            assert after["scores"] == before["scores"]  # the very parameters it trained
            assert again.terminate(timeout=120)[0] == 0, again.log()
            assert_quiet(again.log())
        finally:
            again.close()
