"""A save that fails (ENOSPC, EIO) keeps the previous state file, is reported on the status and in
the log, and is retried until it works. The fault is injected under the state store: `os.fsync`
fails for files in the state folder (the Service runs in this process), as a full or failing disk
makes it fail."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.daemon_harness import CLASSES
from tests.support.faults import service_config, start_service
from tests.support.mqtt_watch import MqttWatch
from tests.support.waiting import wait_until

ROOT = "pz/faults-disk"


class FailingDisk:
    """Makes fsync of files under `folder` fail with `errno_value` while `failing` is True."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = str(folder.resolve())
        self.failing = False
        self.errno_value = errno.ENOSPC
        self.failures = 0
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if self.failing and os.readlink(f"/proc/self/fd/{fd}").startswith(self.folder):
                self.failures += 1
                raise OSError(self.errno_value, os.strerror(self.errno_value))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture
def disk_service(
    tmp_path: Path,
    broker: Any,
    bundle: Path,
    photo_frames: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, FailingDisk, MqttWatch]]:
    """A running in-process daemon whose state folder's disk can be made to fail."""
    config = service_config(
        tmp_path, broker, bundle, photo_frames, ROOT,
        {"training": {"autosave_interval": 1.0, "min_epoch_interval": 0.2}},
    )  # fmt: skip
    disk = FailingDisk(monkeypatch, config.state.dir)
    watch = MqttWatch(broker.host, broker.port, ROOT).start()
    service = start_service(config)
    try:
        watch.wait_for("availability", lambda m: m.text == "online")
        wait_until(lambda: service.frames.latest() is not None, 20, "the first camera frame")
        yield service, disk, watch
    finally:
        disk.failing = False
        service.shutdown()
        watch.close()


def saved(path: Path) -> tuple[bytes, int]:
    """The state file's bytes and its number of samples."""
    data = path.read_bytes()
    with np.load(path, allow_pickle=False) as state:
        return data, int(state["sample_labels"].shape[0])


def save_warning(status: dict) -> str | None:
    """The status warning about a failed save, if any."""
    return next((w for w in status["warnings"] if "saving the state" in w), None)


def test_a_sample_whose_save_fails_keeps_the_old_state_and_is_saved_by_a_retry(
    disk_service, caplog: pytest.LogCaptureFixture
) -> None:
    service, disk, watch = disk_service
    caplog.set_level(logging.INFO)
    assert watch.command("sample", {"class": CLASSES[0]})["ok"]
    state_file = service.store.path
    before, count = saved(state_file)
    assert count == 1

    disk.failing = True
    mark = watch.mark()
    result = watch.command("sample", {"class": CLASSES[1]})
    assert result["ok"] is False and "No space left on device" in result["error"], result
    assert not watch.received("sample", since=mark), "an unsaved sample was announced"
    status = watch.wait_for("status", lambda m: save_warning(m.json()) is not None, since=mark)
    assert "No space left on device" in save_warning(status.json())
    assert state_file.read_bytes() == before, "the failed save changed the state file"
    assert [p.name for p in state_file.parent.iterdir()] == ["state.npz"], "temp files left"
    assert any("saving the state" in r.getMessage() for r in caplog.records if r.levelno >= 40)

    failures = disk.failures
    wait_until(lambda: disk.failures > failures, 10, "a retry of the failed save")
    assert state_file.read_bytes() == before
    disk.failing = False
    mark = watch.mark()
    watch.wait_for("status", lambda m: save_warning(m.json()) is None, since=mark, timeout=10)
    assert saved(state_file)[1] == 2, "the retried save lost the sample"


def test_training_autosave_failing_with_eio_keeps_the_old_state_and_recovers(
    disk_service, caplog: pytest.LogCaptureFixture
) -> None:
    service, disk, watch = disk_service
    for name in CLASSES:
        assert watch.command("sample", {"class": name})["ok"]
    state_file = service.store.path
    before, _ = saved(state_file)
    disk.errno_value = errno.EIO
    disk.failing = True
    mark = watch.mark()
    assert watch.command("train", {"action": "start"})["ok"]
    status = watch.wait_for("status", lambda m: save_warning(m.json()) is not None, since=mark)
    assert "Input/output error" in save_warning(status.json())
    watch.wait_for("loss", since=mark)
    assert state_file.read_bytes() == before
    disk.failing = False
    mark = watch.mark()
    watch.wait_for("status", lambda m: save_warning(m.json()) is None, since=mark, timeout=10)
    assert state_file.read_bytes() != before, "training was never saved after the disk recovered"
    assert watch.command("train", {"action": "stop"})["ok"]
