"""The retained pictures (`<root>/picture/...`): encoded only on a change, kept for a reconnect."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from .payloads import picture_payload

Publish = Callable[[str, bytes, bool], object]  # topic, payload, retain


class RetainedPictures:
    """The last picture of each picture topic, published retained through ``publish``."""

    def __init__(self, enabled: bool, topics: Sequence[str], publish: Publish) -> None:
        self.enabled = enabled
        self.topics = tuple(topics)
        self._publish = publish
        self._lock = threading.Lock()
        self._last: dict[str, bytes] = {}  # topic -> the last picture

    def show(self, topic: str, view: Any) -> None:
        """Encode ``view`` (the model's square, or None) and publish it on ``topic``, retained;
        nothing when pictures are off."""
        if not self.enabled or view is None:
            return
        payload = picture_payload(view)
        with self._lock:
            self._last[topic] = payload
            self._publish(topic, payload, True)

    def republish(self) -> None:
        """On connect: the last pictures again (the broker may have lost them), or, with pictures
        off, clear any an earlier run left on the broker."""
        with self._lock:
            if not self.enabled:
                for topic in self.topics:
                    self._publish(topic, b"", True)
            for topic, payload in self._last.items():
                self._publish(topic, payload, True)
