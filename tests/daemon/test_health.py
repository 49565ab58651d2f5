"""`personalizer health` (Docker's HEALTHCHECK): healthy while the frame loop makes progress."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from personalizer.health import HEARTBEAT, HeartbeatFile, check_health


def health(config) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "personalizer", "health", "--config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_health_follows_the_running_daemon(run_daemon, tmp_path):
    daemon = run_daemon()
    daemon.watch.wait_for("prediction")
    config = tmp_path / "pz_test.toml"
    done = health(config)
    assert done.returncode == 0 and "healthy" in done.stdout
    assert oct((daemon.state_dir / HEARTBEAT).stat().st_mode & 0o777) == "0o600"
    code, _ = daemon.process.terminate()
    assert code == 0
    done = health(config)
    assert done.returncode == 1 and "not running" in done.stderr


def test_a_stale_heartbeat_is_unhealthy(tmp_path):
    beat = HeartbeatFile(tmp_path)
    beat.ready()
    assert check_health(tmp_path)[0]
    old = time.time() - 120
    os.utime(tmp_path / HEARTBEAT, (old, old))
    healthy, reason = check_health(tmp_path)
    assert not healthy and "no progress for 120 s" in reason
    beat.watchdog()  # within the touch interval of ready(): not rewritten yet
    assert not check_health(tmp_path)[0]
    beat.stopping()
    assert not (tmp_path / HEARTBEAT).exists()
