"""A full or failing disk under the real daemon: nothing acknowledged is lost, nothing half-written.

The fault is injected below SQLite: the daemon runs with an LD_PRELOAD library
(tests/support/failing_disk.c) that makes every write and sync of the state folder's files fail
with ENOSPC or EIO while the test says so. A sample that cannot be stored is refused (and not
announced); a head that cannot be saved keeps the previous one and is saved again once the
disk works; the status and the log say what is wrong meanwhile.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from tests.support.daemon_harness import CLASSES, start_daemon, stop
from tests.support.failing_disk import FailingDisk
from tests.support.state_db import saved_counts, saved_samples, saved_steps, state_digest
from tests.support.waiting import wait_until

ROOT = "pz/faults-disk"


def disk_warning(status: dict) -> str | None:
    """The status warning about a failed write, if any."""
    return next((w for w in status["warnings"] if "failed (" in w), None)


def test_a_sample_that_cannot_be_stored_is_refused_and_nothing_is_lost(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> None:
    disk = FailingDisk(tmp_path / "state", tmp_path / "disk-fails")
    daemon = start_daemon(tmp_path, broker, bundle, photo_frames, ROOT, env=disk.environment())
    try:
        watch = daemon.watch
        watch.wait_for("prediction", timeout=30)
        assert watch.command("sample", {"class": CLASSES[0]})["ok"]
        before = state_digest(daemon.state_file)

        disk.fail(errno.ENOSPC)
        mark = watch.mark()
        result = watch.command("sample", {"class": CLASSES[1]})
        assert result["ok"] is False and "No space left on device" in result["error"], result
        assert not watch.received("sample", since=mark), (
            "a sample that was not stored was announced"
        )
        status = watch.wait_for("status", lambda m: disk_warning(m.json()) is not None, since=mark)
        assert "No space left on device" in disk_warning(status.json())
        assert status.json()["samples"][CLASSES[1]] == 0
        disk.heal()
        assert state_digest(daemon.state_file) == before, "the failed write changed the state"

        mark = watch.mark()
        again = watch.command("sample", {"class": CLASSES[1]})
        assert again["ok"] and again["count"] == 1, again
        watch.wait_for("status", lambda m: disk_warning(m.json()) is None, since=mark)
        assert saved_counts(daemon.state_file)[CLASSES[1]] == 1
        assert "Traceback" not in daemon.process.log()
    finally:
        disk.heal()
        stop(daemon)
    restarted = start_daemon(tmp_path, broker, bundle, photo_frames, ROOT)
    try:
        status = restarted.status(predicate=lambda s: sum(s["samples"].values()) == 2)
        assert status["samples"][CLASSES[0]] == 1 and status["samples"][CLASSES[1]] == 1
    finally:
        stop(restarted)


def test_a_head_that_cannot_be_saved_keeps_the_last_one_and_is_saved_when_the_disk_recovers(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> None:
    disk = FailingDisk(tmp_path / "state", tmp_path / "disk-fails")
    daemon = start_daemon(
        tmp_path,
        broker,
        bundle,
        photo_frames,
        ROOT,
        # Training goes on until stopped, so saves keep failing while the disk does.
        overrides={
            "training": {
                "autosave_interval": 1.0,
                "min_epoch_interval": 0.2,
                "until_stopped": True,
            }
        },
        env=disk.environment(),
    )
    try:
        watch = daemon.watch
        watch.wait_for("prediction", timeout=30)
        for name in CLASSES:
            assert watch.command("sample", {"class": name})["ok"]
        assert watch.command("save", {})["ok"]
        before = state_digest(daemon.state_file)
        steps_before = saved_steps(daemon.state_file)

        disk.fail(errno.EIO)
        mark = watch.mark()
        assert watch.command("train", {"action": "start"})["ok"]
        status = watch.wait_for("status", lambda m: disk_warning(m.json()) is not None, since=mark)
        assert "Input/output error" in disk_warning(status.json())
        watch.wait_for("loss", since=mark)  # training goes on meanwhile
        assert saved_steps(daemon.state_file) == steps_before
        assert state_digest(daemon.state_file) == before, "a failed save changed the state"
        wait_until(
            lambda: "saving the training state failed" in daemon.process.log(), 10, "the log"
        )
        assert "Traceback" not in daemon.process.log()  # a full disk is no crash, nor a bug

        disk.heal()
        mark = watch.mark()
        watch.wait_for("status", lambda m: disk_warning(m.json()) is None, since=mark, timeout=15)
        wait_until(lambda: saved_steps(daemon.state_file) > steps_before, 15, "the retried save")
        assert watch.command("train", {"action": "stop"})["ok"]
        assert saved_samples(daemon.state_file) == len(CLASSES)
    finally:
        disk.heal()
        stop(daemon)
