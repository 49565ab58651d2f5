"""Group messages on their way from paho's network thread to the command thread.

paho's thread only appends (:meth:`Inbox.put`); the command thread takes them in order
(:meth:`Inbox.take`). The inbox is bounded in messages and bytes: the broker sends every retained
message of the group at each (re)connect, which can be far more than a board takes in a
moment. A message that does not fit is dropped and only its topic is remembered; once the
command thread has caught up, the fleet asks the broker for the retained messages of exactly
those topics (or, after very many, of the whole group) again. A message over the size limit is
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
MAX_DROPPED = 20_000  # topics of dropped messages remembered; beyond, the whole group is asked


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
        self._dropped: set[str] = set()
        self._dropped_too_many = False
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
                if len(self._dropped) < MAX_DROPPED:
                    self._dropped.add(topic)
                else:
                    self._dropped_too_many = True
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

    def dropped(self) -> tuple[list[str], bool] | None:
        """Once the inbox is empty after it had to drop messages: the topics dropped, and
        whether there were more than could be remembered (then the whole group is to be asked
        for again). None otherwise, and after it was said once."""
        with self._lock:
            if self._items or not (self._dropped or self._dropped_too_many):
                return None
            topics, everything = sorted(self._dropped), self._dropped_too_many
            self._dropped, self._dropped_too_many = set(), False
            return topics, everything
