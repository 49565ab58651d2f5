"""What the engine changed in the taught state: the changes that others may want to follow.

After each change of the samples or the classes is on disk and in the model, the engine hands
a :class:`Change` to its :class:`ChangeListeners` (the fleet, which shares what is taught on this
board with other boards, is one). Listeners run in the thread that made the change (the command
thread); they must be quick (queue the work) and never raise into the engine: a failing listener
is logged and the others still hear the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleTaken:
    """A new sample: its id on this board, class, where it came from, when, and its JPEG."""

    sample_id: int
    class_name: str
    source: str
    created: float
    jpeg: bytes | None = field(repr=False)


@dataclass(frozen=True)
class SampleDeleted:
    """A sample went (``cmd/sample_delete``, a class reset or removal, a reset of everything)."""

    sample_id: int


@dataclass(frozen=True)
class SampleRelabelled:
    """A sample moved to another class."""

    sample_id: int
    class_name: str


@dataclass(frozen=True)
class ClassAdded:
    """A class was added."""

    name: str


@dataclass(frozen=True)
class ClassRenamed:
    """A class got another name (its samples stay)."""

    old: str
    new: str


@dataclass(frozen=True)
class ClassRemoved:
    """A class was removed with its samples (``sample_ids``, as they were then)."""

    name: str
    sample_ids: tuple[int, ...] = ()


Change = SampleTaken | SampleDeleted | SampleRelabelled | ClassAdded | ClassRenamed | ClassRemoved


class ChangeListeners:
    """The listeners of the engine's changes (see the module doc)."""

    def __init__(self) -> None:
        """No listeners yet."""
        self._listeners: list[Callable[[Change], None]] = []

    def add(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every change from now on."""
        self._listeners.append(listener)

    def emit(self, change: Change) -> None:
        """Hand ``change`` to every listener."""
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one broken listener must never stop a command or the others
                log.exception("a listener of the engine's changes failed on %r", change)
