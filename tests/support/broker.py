"""A real mosquitto broker for tests, the demo and the benchmark, on a free loopback port.

Each broker gets its own generated config (listener on 127.0.0.1, anonymous access, no
persistence) in a temporary folder; `stop()` and `start()` again keep the same port, so a test
can take the broker away from a running daemon and bring it back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto")
INSTALL_HINT = "install it: sudo apt-get install mosquitto (or run scripts/ensure-system-packages.sh)"


def find_mosquitto() -> str:
    """Path of the mosquitto binary; RuntimeError with the install command if there is none."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise RuntimeError(f"the mosquitto broker is not installed; {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """One mosquitto process on 127.0.0.1:`port`."""

    def __init__(self, port: int | None = None, message_size_limit: int = 0) -> None:
        self.binary = find_mosquitto()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.config = self.folder / "mosquitto.conf"
        self.log = self.folder / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if message_size_limit:
            lines.append(f"message_size_limit {message_size_limit}")
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> Broker:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return self
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}: {self.log.read_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port}")

    def stop(self) -> None:
        """Stop the broker (its clients see the connection drop)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the broker and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
