"""The state folder itself: made private and writable, and a database moved aside in it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import PersonalizerError

STATE_DB = "state.db"


class StateDirError(PersonalizerError):
    """The state folder cannot be created or written; the message names it and the fix."""


def prepare_folder(directory: Path) -> None:
    """Create ``directory`` (0700) if needed and check it is writable."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_uid == os.geteuid():
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise StateDirError(
            f"state.dir {directory} cannot be created ({exc.strerror or exc}); create it "
            "and give it to the daemon's user, or choose another state.dir"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateDirError(
            f"state.dir {directory} is not writable by this user; fix its owner "
            "(systemd's StateDirectory= does this) or choose another state.dir"
        )


def set_aside(path: Path, reason: str) -> Path:
    """Move the (closed) database ``path`` and its WAL aside as ``<name>.<reason>-<time>``;
    returns where it went."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target
