"""The state folder's size and its file system's free space, for the page's status."""

from __future__ import annotations

import os
import time
from pathlib import Path

DISK_INTERVAL = 5.0  # seconds a measurement of the state folder's size is reused


class DiskUse:
    """The state folder's size and its file system's free space, measured now and then."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._measured = -DISK_INTERVAL
        self._value: dict[str, int | None] = {}

    def value(self) -> dict[str, int | None]:
        """``used``, ``free`` and ``total`` bytes, measured at most every DISK_INTERVAL."""
        now = time.monotonic()
        if now - self._measured >= DISK_INTERVAL:
            self._measured = now
            used = 0
            for root, _dirs, files in os.walk(self.folder):
                for name in files:
                    try:
                        used += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        continue
            try:
                stats = os.statvfs(self.folder)
                free, total = stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
            except OSError:
                free = total = None
            self._value = {"used": used, "free": free, "total": total}
        return self._value
