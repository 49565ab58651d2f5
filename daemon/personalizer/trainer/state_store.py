"""The state directory: where samples, parameters and optimizer state survive restarts.

One file, `state.npz`, written by the runtime model's atomic `save` (temp file, fsync, rename,
fsync the folder). The folder is private (0700) and the file 0600. A state file that cannot be
used (written for another bundle, or corrupt) is renamed aside with the reason and the time in
its name, reported, and the daemon starts fresh rather than refusing to run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import StateBundleMismatch, StateFileError, StateFileNotFound

log = logging.getLogger(__name__)

STATE_FILE = "state.npz"


class StateDirError(Exception):
    """The state folder cannot be created or written; the message names it and the fix."""


class PersistentModel(Protocol):
    """What the store needs from the model: atomic save and load of its whole state."""

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole state atomically."""
        ...

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the in-memory state with the file's."""
        ...


@dataclass(frozen=True)
class LoadOutcome:
    """What happened to the state file at start: loaded, absent, or set aside (and why)."""

    loaded: bool
    warning: str | None = None
    set_aside: Path | None = None


class StateStore:
    """Saves and loads the model's state in one private folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self._lock = threading.Lock()  # one writer at a time (trainer, commands, shutdown)
        self.last_save: float | None = None
        # Set while the newest state is not on disk (the last save failed): the status reports
        # it and the service retries; cleared by the next save that works.
        self.error: str | None = None
        self.last_failure: float | None = None

    def prepare(self) -> None:
        """Create the folder (0700) if needed and check it is writable."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.directory.stat().st_uid == os.geteuid():
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise StateDirError(
                f"state.dir {self.directory} cannot be created ({exc.strerror or exc}); create it "
                "and give it to the daemon's user, or choose another state.dir"
            ) from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise StateDirError(
                f"state.dir {self.directory} is not writable by this user; fix its owner "
                "(systemd's StateDirectory= does this) or choose another state.dir"
            )

    def _set_aside(self, reason: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.directory / f"{STATE_FILE}.{reason}-{stamp}"
        counter = 1
        while target.exists():
            target = self.directory / f"{STATE_FILE}.{reason}-{stamp}-{counter}"
            counter += 1
        os.replace(self.path, target)
        return target

    def load_into(self, model: PersistentModel) -> LoadOutcome:
        """Load the state file into `model`; set an unusable file aside and start fresh."""
        self._remove_stale_temporaries()
        if not self.path.exists():
            log.info("no saved state in %s: starting fresh", self.directory)
            return LoadOutcome(loaded=False)
        try:
            model.load(self.path)
        except StateFileNotFound:
            return LoadOutcome(loaded=False)
        except StateBundleMismatch as exc:
            return self._unusable(model, "other-bundle", "was written for another bundle", exc)
        except StateFileError as exc:
            return self._unusable(model, "corrupt", "is corrupt or not a state file", exc)
        log.info("loaded the saved state from %s", self.path)
        return LoadOutcome(loaded=True)

    def _unusable(
        self, model: PersistentModel, reason: str, what: str, exc: Exception
    ) -> LoadOutcome:
        target = self._set_aside(reason)
        warning = (
            f"state file {self.path} {what} ({exc}); moved it to {target.name} and started "
            "fresh (delete that file once you no longer need it)"
        )
        log.warning("%s", warning)
        return LoadOutcome(loaded=False, warning=warning, set_aside=target)

    def save(self, model: PersistentModel) -> int:
        """Write the model's state atomically; returns the file size in bytes."""
        with self._lock:
            try:
                model.save(self.path)
                os.chmod(self.path, 0o600)
                size = self.path.stat().st_size
            except OSError as exc:
                # The previous file is untouched (atomic write); remember to try again.
                self.error = (
                    f"saving the state to {self.path} failed ({exc.strerror or exc}); the "
                    "previous state is kept and the save is retried; check the free space and "
                    "permissions of state.dir"
                )
                self.last_failure = time.monotonic()
                raise
            if self.error is not None:
                log.info("state saved to %s again after a failed save", self.path)
            self.error = None
            self.last_save = time.monotonic()
            return size

    def _remove_stale_temporaries(self) -> None:
        # A power cut (or kill -9) during a save leaves its temporary file behind; months of
        # those would fill the disk.
        for stale in self.directory.glob(f".{STATE_FILE}.*.tmp"):
            try:
                stale.unlink()
                log.info("removed %s, left by a save that was interrupted", stale.name)
            except OSError as exc:
                log.warning("cannot remove %s: %s", stale, exc)
