"""The newest item from one thread to another: an item not taken yet is replaced by a newer one.

Between the service's two frame threads (loops.py): the base model's output of the newest frame
waits here for the head; when the head is slower, older frames are skipped, as the camera's
newest frame wins over older ones (camera/latest.py).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """One slot: :meth:`put` replaces what waits, :meth:`take` waits for something."""

    def __init__(self) -> None:
        """An empty slot."""
        self._ready = threading.Condition()
        self._item: T | None = None

    @property
    def pending(self) -> bool:
        """Whether an item waits to be taken."""
        with self._ready:
            return self._item is not None

    def put(self, item: T) -> None:
        """Hand ``item`` over (replacing one not taken yet)."""
        with self._ready:
            self._item = item
            self._ready.notify()

    def take(self, timeout: float) -> T | None:
        """The item handed over, waiting up to ``timeout`` seconds (None: nothing came)."""
        with self._ready:
            if self._item is None:
                self._ready.wait(timeout)
            item, self._item = self._item, None
            return item
