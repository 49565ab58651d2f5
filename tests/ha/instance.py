"""A real Home Assistant process in the installation's root, with a fresh configuration.

Each instance gets its own configuration folder in the root (``/srv/ha-tests/<pid>-<n>``,
deleted by :meth:`HomeAssistantInstance.close`; folders of dead test runs are deleted by the next
one), an HTTP port of its own on 127.0.0.1, and a console log on the host
(``build/ha/logs/live/<name>.log``, kept for reading after a failure). It starts with
``--skip-pip``: everything it loads was installed with the root (tests/ha/installation.py), and
nothing is installed while a test runs. ``/proc`` is mounted in the root while it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

from tests.ha.api import ApiError, HomeAssistantApi
from tests.ha.installation import LOGS, VENV, Installation
from tests.support.broker import free_port
from tests.support.debian_roots import last_lines

CONFIG_PARENT = "/srv/ha-tests"
CONFIGURATION = """\
homeassistant:
  name: personalizer tests
  time_zone: UTC
  unit_system: metric
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
"""
_instances = iter(range(1, 1_000_000))


def _remove_dead_configs(root_parent: Path) -> None:
    """Configuration folders of test runs whose process is gone."""
    for folder in root_parent.glob("*-*"):
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


class HomeAssistantInstance:
    """One Home Assistant: start, wait until running, stop, restart, read its log."""

    def __init__(self, installation: Installation, name: str) -> None:
        self.installation = installation
        self.root = installation.root
        self.port = free_port()
        self.config_dir = f"{CONFIG_PARENT}/{os.getpid()}-{next(_instances)}"
        self.console = LOGS / "live" / f"{name}.log"
        self.api = HomeAssistantApi(f"http://127.0.0.1:{self.port}")
        self.process: subprocess.Popen[bytes] | None = None
        self._mounts = contextlib.ExitStack()
        self._mounted = False
        parent = self.root.host_path(CONFIG_PARENT)
        parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_configs(parent)
        config = self.root.host_path(self.config_dir)
        config.mkdir()
        (config / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        self.console.parent.mkdir(parents=True, exist_ok=True)
        self.console.write_text("")

    def start(self) -> None:
        """Start the process (returns at once; see :meth:`wait_http` and :meth:`wait_running`)."""
        if not self._mounted:  # /proc stays mounted across restarts
            self._mounts.enter_context(self.root.mounted())
            self._mounted = True
        command = self.root.command(
            [f"{VENV}/bin/hass", "--config", self.config_dir, "--skip-pip", "--log-no-color"],
            # Releases that deprecate the YAML `http:` section (2026.11 warns: removed in
            # 2027.2) take the default port from here; older ones ignore it.
            env={"SETUP_PORT": str(self.port)},
        )
        with self.console.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> float:
        """Poll `ready()` until true; seconds waited. AssertionError with the log's end when the
        process exits or `timeout` passes."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                raise AssertionError(
                    f"Home Assistant exited ({self.process and self.process.returncode}) before "
                    f"{what}: {last_lines(self.console, 8)}; log: {self.console}"
                )
            try:
                if ready():
                    return time.monotonic() - started
            except (OSError, ApiError, urllib.error.URLError):
                pass  # not listening yet, or not set up yet
            time.sleep(0.2)
        raise AssertionError(
            f"Home Assistant did not reach {what} in {timeout:.0f} s: "
            f"{last_lines(self.console, 8)}; log: {self.console}"
        )

    def wait_http(self, timeout: float = 120.0) -> float:
        """Wait until its HTTP server answers (onboarding's status needs no login)."""
        return self._wait(
            "an answering HTTP server",
            lambda: self.api.request("GET", "/api/onboarding", auth=False) is not None,
            timeout,
        )

    def wait_running(self, timeout: float = 120.0) -> float:
        """Wait until its core reports RUNNING (every integration set up); needs a token."""
        return self._wait(
            "the RUNNING state",
            lambda: self.api.get("/api/config").get("state") == "RUNNING",
            timeout,
        )

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM and wait (SIGKILL after `timeout`); seconds it took to exit."""
        if not self.alive():
            return 0.0
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(
                f"Home Assistant did not stop within {timeout:.0f} s of SIGTERM; killed it. "
                f"Log: {self.console}"
            ) from None
        return time.monotonic() - started

    def log_size(self) -> int:
        """The console log's length now: pass it to :meth:`log` for what comes after."""
        return self.console.stat().st_size

    def log(self, since: int = 0) -> str:
        """The console log from byte offset `since`."""
        with self.console.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def close(self) -> None:
        """Stop it, unmount /proc and delete its configuration folder (the log stays)."""
        try:
            if self.alive():
                try:
                    self.stop()
                except AssertionError:
                    pass  # killed; the folder goes anyway
        finally:
            self._mounts.close()
            self._mounted = False
            shutil.rmtree(self.root.host_path(self.config_dir), ignore_errors=True)
