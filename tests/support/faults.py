"""Helpers of the fault-injection tests: process figures, a notify socket, an in-process daemon.

The fault tests run the daemon two ways: the real `personalizer run` process (kill -9, broker
faults) through tests/support/daemon_harness.py, and the `Service` in this test process when the
fault is injected into one of its parts (a camera that stalls, a disk that fails, a notify
socket), through :func:`start_service`. Both use a real mosquitto and a real bundle.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.broker import Broker
from tests.support.daemon_harness import base_sections
from tests.support.daemon_process import write_config


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident set size of process `pid` (``field="VmHWM"``: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def open_fds(pid: int) -> int:
    """Open file descriptors of process `pid`."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class NotifySocket:
    """A real sd_notify datagram socket, as systemd binds it; records every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def pings_between(self, start: float, end: float) -> int:
        """WATCHDOG=1 messages received between two monotonic times."""
        with self._lock:
            return sum(1 for t, m in self.messages if m == "WATCHDOG=1" and start <= t <= end)

    def close(self) -> None:
        """Stop receiving and close the socket."""
        self._closed.set()
        self._thread.join(2)
        self.sock.close()


def service_config(
    tmp_path: Path,
    broker: Broker,
    bundle: Path,
    frames: Path,
    root: str,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """The typed Config of the daemon tests' usual setup (replay camera, fast everything)."""
    from personalizer.config import load_config

    sections = base_sections(tmp_path, broker, bundle, frames, root)
    for name, table in (overrides or {}).items():
        sections.setdefault(name, {}).update(table)
    path = write_config(tmp_path / f"{root.replace('/', '_')}.toml", sections)
    return load_config(path)


def start_service(config: Any, source: Any = None, notifier: Any = None) -> Any:
    """A started in-process `Service` (the daemon minus the CLI); call `.shutdown()` after."""
    from personalizer.service import build_service

    service = build_service(config, source=source, notifier=notifier)
    service.start()
    return service


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
