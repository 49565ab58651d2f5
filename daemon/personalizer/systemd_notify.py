"""systemd's notify protocol (``sd_notify``): datagrams to ``$NOTIFY_SOCKET``.

Used when the service runs under a ``Type=notify`` unit. ``READY=1`` once serving, ``WATCHDOG=1``
each time the frame loop makes progress (rate-limited to a quarter of ``WatchdogSec``),
``STATUS=`` with a one-line summary, ``STOPPING=1`` on shutdown. Sending never raises: a
supervisor that went away must not take the service down with it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify_address(value: str) -> str | bytes:
    """The socket address in ``$NOTIFY_SOCKET`` (``@name`` is Linux's abstract namespace)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class SystemdNotifier:
    """Sends the service's lifecycle signals to systemd (a ``ServiceNotifier``)."""

    def __init__(self, address: str | bytes, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._lock = threading.Lock()
        # Ping at four times the rate systemd expects, so one late frame does not kill us.
        self._min_interval = (watchdog_usec / 4e6) if watchdog_usec else None
        self._last_ping = 0.0
        self._last_status = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier | None:
        """A notifier when systemd supervises this process (``$NOTIFY_SOCKET`` set), else None."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        if not address:
            return None
        watchdog_usec = None
        if env.get("WATCHDOG_USEC") and env.get("WATCHDOG_PID", str(os.getpid())) == str(
            os.getpid()
        ):
            watchdog_usec = int(env["WATCHDOG_USEC"])
        return cls(notify_address(address), watchdog_usec)

    @property
    def watchdog_enabled(self) -> bool:
        """True when systemd expects watchdog pings."""
        return self._min_interval is not None

    def _send(self, message: str) -> None:
        with self._lock:
            try:
                self._socket.sendto(message.encode(), self._address)
            except OSError as exc:
                log.debug("sd_notify %r not delivered: %s", message, exc)

    def ready(self) -> None:
        """``READY=1``: the model, camera, state and MQTT client are up."""
        self._send("READY=1")

    def watchdog(self) -> None:
        """``WATCHDOG=1``, at most every quarter of the watchdog interval."""
        if self._min_interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self._min_interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """``STATUS=<text>`` when the text changed (shown by ``systemctl status``)."""
        line = text.replace("\n", " ")
        if line != self._last_status:
            self._last_status = line
            self._send(f"STATUS={line}")

    def stopping(self) -> None:
        """``STOPPING=1``: shutdown has begun."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
