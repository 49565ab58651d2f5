"""A heartbeat file for supervisors without sd_notify (Docker's HEALTHCHECK).

The frame loop's keep-alive (the same ``watchdog()`` that feeds systemd's watchdog) touches
``<state dir>/heartbeat`` at most every few seconds; ``personalizer health`` reports healthy
while that file is fresh. A stuck frame loop (a hung inference, a deadlock) stops the touches.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from .notify import ServiceNotifier

log = logging.getLogger(__name__)

HEARTBEAT = "heartbeat"
TOUCH_INTERVAL_S = 5.0
STALE_AFTER_S = 60.0


class HeartbeatFile:
    """A ``ServiceNotifier`` that keeps ``<dir>/heartbeat`` fresh while the frame loop runs."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / HEARTBEAT
        self._last = 0.0

    def _touch(self) -> None:
        try:
            self.path.touch(mode=0o600)
            os.utime(self.path)
        except OSError as exc:  # a full or read-only disk must not stop the frame loop
            log.debug("heartbeat %s not written: %s", self.path, exc)

    def ready(self) -> None:
        """Serving: the first heartbeat."""
        self._last = time.monotonic()
        self._touch()

    def watchdog(self) -> None:
        """The frame loop made progress: refresh the file every few seconds."""
        now = time.monotonic()
        if now - self._last >= TOUCH_INTERVAL_S:
            self._last = now
            self._touch()

    def status(self, text: str) -> None:
        """Not recorded."""

    def stopping(self) -> None:
        """A stopped daemon is not healthy: remove the file."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass


class NotifierFanout:
    """Hands every lifecycle signal to several notifiers (systemd and the heartbeat file)."""

    def __init__(self, notifiers: Sequence[ServiceNotifier]) -> None:
        self.notifiers = list(notifiers)

    def ready(self) -> None:
        """Forward to each."""
        for notifier in self.notifiers:
            notifier.ready()

    def watchdog(self) -> None:
        """Forward to each."""
        for notifier in self.notifiers:
            notifier.watchdog()

    def status(self, text: str) -> None:
        """Forward to each."""
        for notifier in self.notifiers:
            notifier.status(text)

    def stopping(self) -> None:
        """Forward to each."""
        for notifier in self.notifiers:
            notifier.stopping()


def check_health(directory: Path, stale_after: float = STALE_AFTER_S) -> tuple[bool, str]:
    """``(healthy, reason)`` from the heartbeat file's age."""
    path = Path(directory) / HEARTBEAT
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat at {path}: the daemon is not running (or not serving yet)"
    except OSError as exc:
        return False, f"cannot read {path}: {exc}"
    if age > stale_after:
        return False, f"the frame loop has made no progress for {age:.0f} s (heartbeat {path})"
    return True, f"healthy: frame loop alive {age:.0f} s ago"
