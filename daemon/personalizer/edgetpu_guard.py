"""A start that dies loading the Edge TPU delegate must not die again: the next one uses the CPU.

Coral's libedgetpu (2022, from its apt repository) is reported to crash inside
``load_delegate`` with tflite-runtime 2.12 and newer (google-coral/edgetpu issue 812): the
process is gone before Python can catch anything, and systemd would restart it into the same
crash for ever. So before loading the delegate the daemon leaves a marker file in the state
folder and removes it once the delegate loaded (or failed cleanly). A marker found at start
means the last attempt died in there: this start runs the base model on the CPU and says so in
the status, until the marker is removed (after fixing libedgetpu; see the README).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = "edgetpu-loading"


class EdgeTpuGuard:
    """The marker of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / MARKER

    def crashed_before(self) -> str | None:
        """The warning to show when the last start died loading the delegate, else None."""
        if not self.path.exists():
            return None
        try:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.path.stat().st_mtime))
        except OSError:
            when = "an earlier start"
        return (
            f"the daemon died loading the Edge TPU delegate at {when} (libedgetpu crashed), so "
            "the base model runs on the CPU; install a libedgetpu that works with this runtime "
            f"(see the README, Edge TPU) and delete {self.path} to try the Edge TPU again"
        )

    def arm(self) -> None:
        """Mark that the delegate is being loaded (durably: a crash may follow at once)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"pid {os.getpid()} loading the Edge TPU delegate\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def disarm(self) -> None:
        """The load returned (with or without a delegate): no crash to remember."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)
