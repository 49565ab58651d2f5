"""A real mosquitto broker for tests, the demo and the benchmark, on a free loopback port.

Each broker gets its own generated config (listener on 127.0.0.1, no persistence) in a temporary
folder; `stop()` and `start()` again keep the same port, so a test can take the broker away from a
running daemon and bring it back. Access is anonymous unless `users` is given (then a
`password_file` made with mosquitto_passwd and `allow_anonymous false`, and `acl` lines when
given); `tls` serves TLS only. `persistence` keeps retained messages in the folder across a
stop and start (mosquitto writes them at a clean stop); `bridge_to` joins this broker to
another one for `bridge_topics` in both directions, as a mosquitto bridge between two sites.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from .certificates import ServerCertificate

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto")
INSTALL_HINT = (
    "install it: sudo apt-get install mosquitto (or run scripts/ensure-system-packages.sh)"
)


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

    def __init__(
        self,
        port: int | None = None,
        message_size_limit: int = 0,
        users: dict[str, str] | None = None,
        tls: ServerCertificate | None = None,
        persistence: bool = False,
        bridge_to: Broker | None = None,
        bridge_topics: tuple[str, ...] = (),
        acl: tuple[str, ...] = (),
    ) -> None:
        self.binary = find_mosquitto()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.config = self.folder / "mosquitto.conf"
        self.log = self.folder / "mosquitto.log"
        self.users = dict(users or {})
        self.tls = tls
        # As root, mosquitto would switch to the `mosquitto` user, who cannot read this private
        # folder's password file and keys: stay whoever runs the tests.
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}"]
        if tls is not None:
            lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        if users:
            lines += ["allow_anonymous false", f"password_file {self._password_file(users)}"]
        else:
            lines.append("allow_anonymous true")
        if acl:
            (self.folder / "acl").write_text("\n".join(acl) + "\n")
            lines.append(f"acl_file {self.folder / 'acl'}")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        lines += [
            "persistence false" if not persistence else "autosave_interval 60",
            # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to every small message
            # the broker forwards (a command, its result): a command round trip took ~90 ms.
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if message_size_limit:
            lines.append(f"message_size_limit {message_size_limit}")
        if bridge_to is not None:  # bridge options last: they belong to their `connection`
            lines += [
                f"connection to-{bridge_to.port}",
                f"address {bridge_to.host}:{bridge_to.port}",
                *(f"topic {topic} both 1" for topic in bridge_topics),
                "restart_timeout 1 2",
            ]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def _password_file(self, users: dict[str, str]) -> Path:
        """A mosquitto password file (hashed, made by mosquitto_passwd) for `users`."""
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        path = self.folder / "passwords"
        path.touch(mode=0o600)
        for user, password in users.items():
            subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
        return path

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
