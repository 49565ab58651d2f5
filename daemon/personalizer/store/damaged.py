"""Damaged sample rows found while reading: queued by whichever thread read them, set aside by
the command thread.

A reader that finds a row whose CRC or size is wrong (sample_reader.py) may be the trainer in
the middle of a step: it must not wait for the store's lock. So :meth:`DamagedRows.found` only
takes the rows out of the model and queues their ids (under a lock of its own, the innermost);
the command thread later moves them to ``set_aside_samples`` and names them in the status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .samples_table import SampleInfo


class DamagedRows:
    """The damaged rows found and not yet set aside."""

    def __init__(self, forget: Callable[[int], Any]) -> None:
        """``forget(id)`` takes a sample out of the model."""
        self._forget = forget
        self._lock = threading.Lock()
        self._found: dict[int, str] = {}

    def found(self, damaged: dict[int, str]) -> None:
        """Rows ``damaged`` (id -> why) were found, in any thread: out of the model now."""
        with self._lock:
            self._found.update(damaged)
        for sample_id in damaged:
            self._forget(sample_id)

    def take(self) -> dict[int, str]:
        """The rows found since the last call (id -> why)."""
        with self._lock:
            found, self._found = self._found, {}
        return found


def warning(info: SampleInfo, name: str | None, why: str, path: Path) -> str:
    """The status line about one damaged sample that was set aside."""
    owner = f"class {name}" if name else f"slot {info.slot}"
    return (
        f"sample #{info.id} ({owner}, from {info.source}) was damaged on disk ({why}) and was "
        f"set aside (table set_aside_samples of {path.name}): take a new sample in its place"
    )
