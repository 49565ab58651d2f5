"""Group messages on their way from paho's network thread to the command thread.

paho's thread only appends (:meth:`Inbox.put`); the command thread takes them in order
(:meth:`Inbox.take`). The inbox is bounded in messages and bytes: the broker sends every retained
message of the group at each (re)connect, which can be far more than a board takes in a
moment. A message that does not fit is dropped and the inbox remembers it overflowed; once the
command thread has caught up, the fleet subscribes again and the broker sends the retained
messages again (those already taken are skipped cheaply). A message over the size limit is
never kept: only its topic and size, so the command thread can say it was refused.

Threads: ``_lock`` is a leaf (nothing else is taken while it is held).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

MAX_MESSAGES = 4096
MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Arrival:
    """One message of the group: its topic and payload (None: it was over ``size_limit``)."""

    topic: str
    payload: bytes | None = field(repr=False)
    size: int


class Inbox:
    """A bounded queue of group messages (see the module doc)."""

    def __init__(
        self, size_limit: int, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES
    ) -> None:
        """Messages over ``size_limit`` bytes are refused unread."""
        self.size_limit = size_limit
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: deque[Arrival] = deque()
        self._bytes = 0
        self._overflowed = False
        self.last_heard: float | None = None  # when a message of another board last came

    def put(self, topic: str, payload: bytes, from_other_board: bool) -> bool:
        """Queue one message (paho's thread); False when it was dropped (the inbox is full)."""
        size = len(payload)
        kept = payload if size <= self.size_limit else None
        cost = len(kept) if kept is not None else 0
        with self._lock:
            if from_other_board:
                self.last_heard = time.time()
            if len(self._items) >= self._max_messages or self._bytes + cost > self._max_bytes:
                self._overflowed = True
                return False
            self._items.append(Arrival(topic, kept, size))
            self._bytes += cost
        return True

    def take(self) -> Arrival | None:
        """The oldest message, or None."""
        with self._lock:
            if not self._items:
                return None
            item = self._items.popleft()
            self._bytes -= len(item.payload) if item.payload is not None else 0
            return item

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def caught_up_after_overflow(self) -> bool:
        """True (once) when the inbox is empty after it had to drop messages: time to ask the
        broker for the retained messages again."""
        with self._lock:
            if self._overflowed and not self._items:
                self._overflowed = False
                return True
            return False
