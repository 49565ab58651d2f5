"""A camera that stalls or fails is reported and recovered from; only a stuck frame loop stops the
systemd watchdog. The Service runs in this process with a test camera and a real notify socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personalizer.camera import CameraError
from personalizer.systemd_notify import SystemdNotifier
from tests.support.faults import NotifySocket, service_config, start_service
from tests.support.mqtt_watch import MqttWatch
from tests.support.photos import photo
from tests.support.waiting import wait_until

ROOT = "pz/faults-camera"
WATCHDOG_USEC = 1_000_000  # WatchdogSec=1: pings at most every 0.25 s


class ScriptedCamera:
    """A FrameSource whose reads can be made to block ("stall") or fail ("fail")."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.mode = "ok"
        self._closed = threading.Event()

    def open(self) -> None:
        """Fails while the mode is "fail", like an unplugged camera."""
        if self.mode == "fail":
            raise CameraError("test camera: cable pulled")
        self._closed.clear()

    def read(self) -> np.ndarray:
        """A frame every 50 ms; blocks while stalled; raises while failing."""
        time.sleep(0.05)
        while self.mode == "stall" and not self._closed.is_set():
            time.sleep(0.02)
        if self.mode == "fail":
            raise CameraError("test camera: read error")
        return self.image.copy()

    def close(self) -> None:
        """Make a blocked read give up."""
        self._closed.set()

    def describe(self) -> str:
        """Its name in the status."""
        return "test camera"


@pytest.fixture
def camera_service(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> Iterator[tuple[Any, ScriptedCamera, NotifySocket, MqttWatch]]:
    """A running in-process daemon on a ScriptedCamera, with a notify socket and an MQTT watcher."""
    config = service_config(tmp_path, broker, bundle, photo_frames, ROOT)
    camera = ScriptedCamera(photo("cat", 128))
    sock = NotifySocket(tmp_path / "notify.sock")
    notifier = SystemdNotifier(str(sock.path), WATCHDOG_USEC)
    watch = MqttWatch(broker.host, broker.port, ROOT).start()
    service = start_service(config, source=camera, notifier=notifier)
    try:
        yield service, camera, sock, watch
    finally:
        camera.mode = "ok"
        service.shutdown()
        notifier.close()
        sock.close()
        watch.close()


def camera_status(watch: MqttWatch, ok: bool, since: int, timeout: float = 10.0) -> dict:
    """The first published status (from `since`) whose camera.ok is `ok`."""
    message = watch.wait_for(
        "status", lambda m: m.json()["camera"]["ok"] is ok, timeout=timeout, since=since
    )
    return message.json()["camera"]


def assert_pinging(sock: NotifySocket, start: float, end: float) -> None:
    """WATCHDOG=1 came often enough between `start` and `end` for WatchdogSec=1."""
    times = [t for t, m in list(sock.messages) if m == "WATCHDOG=1" and start <= t <= end]
    assert len(times) >= 2, f"{len(times)} pings in {end - start:.1f} s"
    gaps = [b - a for a, b in zip([start, *times], [*times, end], strict=True)]
    assert max(gaps) < WATCHDOG_USEC / 1e6, f"a gap of {max(gaps):.2f} s between pings"


def test_stalled_camera_is_reported_recovers_and_keeps_the_watchdog_alive(camera_service) -> None:
    service, camera, sock, watch = camera_service
    camera_status(watch, True, 0)
    mark = watch.mark()
    stalled_at = time.monotonic()
    camera.mode = "stall"
    status = camera_status(watch, False, mark)
    assert "blocking" in status["error"], status
    time.sleep(1.5)
    # The frame loop is healthy while it waits for the camera: systemd must not kill us.
    assert_pinging(sock, stalled_at + 2.2, time.monotonic())
    mark = watch.mark()
    camera.mode = "ok"
    camera_status(watch, True, mark)
    watch.wait_for("prediction", since=mark, timeout=10)


def test_failing_camera_is_reported_reopened_and_keeps_the_watchdog_alive(camera_service) -> None:
    service, camera, sock, watch = camera_service
    camera_status(watch, True, 0)
    mark = watch.mark()
    failed_at = time.monotonic()
    camera.mode = "fail"
    status = camera_status(watch, False, mark)
    assert "test camera" in status["error"], status
    time.sleep(1.5)
    assert_pinging(sock, failed_at + 0.5, time.monotonic())
    assert service.engine.status.report().camera.ok is False
    mark = watch.mark()
    camera.mode = "ok"
    camera_status(watch, True, mark, timeout=15)  # reopened after the backoff
    watch.wait_for("prediction", since=mark, timeout=10)


@pytest.mark.parametrize("step", ["bottleneck", "classify_bottleneck"])
def test_watchdog_stops_only_while_the_frame_loop_is_stuck(camera_service, step) -> None:
    # Either step of a frame (the base model in the frame loop, the head in the prediction
    # loop) hanging stops the keep-alive.
    service, camera, sock, watch = camera_service
    wait_until(lambda: sock.pings_between(0, time.monotonic()) >= 3, 10, "first watchdog pings")
    model = service.model
    real = getattr(model, step)
    release = threading.Event()
    stuck = threading.Event()

    def hung(*args: Any, **kwargs: Any) -> Any:
        if not release.is_set():
            stuck.set()
            release.wait(30)  # a deadlock in the frame loop, as far as systemd can tell
        return real(*args, **kwargs)

    setattr(model, step, hung)
    try:
        assert stuck.wait(5), "the frame loop never classified"
        since = time.monotonic() + 0.2  # a ping may be in flight
        time.sleep(1.5)  # longer than WatchdogSec: systemd would restart the service now
        assert sock.pings_between(since, time.monotonic()) == 0, "a stuck loop kept pinging"
    finally:
        release.set()
        setattr(model, step, real)
    resumed = time.monotonic()
    wait_until(lambda: sock.pings_between(resumed, time.monotonic()) >= 3, 5, "pings again")
    assert service.engine.status.report().camera.ok is True


def test_a_base_model_failing_on_every_frame_keeps_the_watchdog_alive(camera_service) -> None:
    # The loops are alive and the failures are in the log: a restart by systemd would not help.
    service, camera, sock, watch = camera_service
    wait_until(lambda: sock.pings_between(0, time.monotonic()) >= 3, 10, "first watchdog pings")
    model = service.model
    real = model.bottleneck
    failed = threading.Event()

    def failing(*args: Any, **kwargs: Any) -> Any:
        failed.set()
        raise RuntimeError("the base model failed (test)")

    model.bottleneck = failing
    try:
        assert failed.wait(5), "the frame loop never ran the base model"
        since = time.monotonic()
        time.sleep(1.5)
        assert_pinging(sock, since, time.monotonic())
    finally:
        model.bottleneck = real
