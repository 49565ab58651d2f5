"""An MQTT client that records what the daemon publishes and sends it commands.

Used by the daemon tests, the demo and the benchmark: a plain paho-mqtt 2.x client, so what it
checks is what any subscriber would see.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

_ids = itertools.count(1)


@dataclass(frozen=True)
class Message:
    """One received message and when it arrived."""

    topic: str
    payload: bytes
    retain: bool
    received: float  # time.time()

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)

    @property
    def text(self) -> str:
        """The payload as text."""
        return self.payload.decode("utf-8", "replace")


class MqttWatch:
    """Subscribes to `<root>/#` (and more), keeps every message, waits for the ones wanted."""

    def __init__(
        self,
        host: str,
        port: int,
        root: str,
        extra_topics: tuple[str, ...] = (),
        credentials: tuple[str, str] | None = None,
        ca: Path | None = None,
    ) -> None:
        self.host, self.port, self.root = host, port, root
        self.messages: list[Message] = []
        self._condition = threading.Condition()
        self._subscribed = threading.Event()
        self.on_message: Callable[[Message], None] | None = None
        self._topics = (f"{root}/#", *extra_topics)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{next(_ids)}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        # No Nagle: a command and its result are small packets that must not wait for ACKs.
        self.client.on_socket_open = lambda client, userdata, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_message(self, client, userdata, msg) -> None:
        message = Message(msg.topic, bytes(msg.payload), bool(msg.retain), time.time())
        with self._condition:
            self.messages.append(message)
            self._condition.notify_all()
        if self.on_message is not None:
            self.on_message(message)

    def start(self, timeout: float = 10.0) -> MqttWatch:
        """Connect and subscribe (reconnects by itself if the broker goes away)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"could not subscribe at {self.host}:{self.port}")
        return self

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def topic(self, suffix: str) -> str:
        """`<root>/<suffix>`."""
        return f"{self.root}/{suffix}"

    def received(self, suffix: str, since: int = 0) -> list[Message]:
        """Messages on `<root>/<suffix>` (from index `since` of all messages)."""
        topic = self.topic(suffix)
        with self._condition:
            return [m for m in self.messages[since:] if m.topic == topic]

    def mark(self) -> int:
        """An index to pass as `since`: only messages after this moment count."""
        with self._condition:
            return len(self.messages)

    def wait_for(
        self,
        suffix: str,
        predicate: Callable[[Message], bool] = lambda m: True,
        timeout: float = 20.0,
        since: int = 0,
        exact_topic: bool = False,
    ) -> Message:
        """The first message on `<root>/<suffix>` (or the exact topic) matching `predicate`."""
        topic = suffix if exact_topic else self.topic(suffix)
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for message in self.messages[since:]:
                    if message.topic == topic and predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [m.topic for m in self.messages[since:]][-20:]
                    raise TimeoutError(f"nothing matching on {topic} in {timeout} s; saw {seen}")
                self._condition.wait(remaining)

    def publish(self, suffix: str, payload: bytes | str, qos: int = 1) -> None:
        """Publish to `<root>/<suffix>`."""
        self.client.publish(self.topic(suffix), payload, qos=qos).wait_for_publish(5)

    def command(
        self, name: str, payload: dict[str, Any] | bytes | str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Send `cmd/<name>` and return its result (matched by a fresh request_id for dicts)."""
        since = self.mark()
        if isinstance(payload, dict):
            request_id = f"r{next(_ids)}"
            body: bytes | str = json.dumps({**payload, "request_id": request_id})

            def match(m: Message) -> bool:
                return m.json().get("request_id") == request_id

        else:
            body = payload

            def match(m: Message) -> bool:
                return True

        self.publish(f"cmd/{name}", body)
        return self.wait_for(f"cmd/{name}/result", match, timeout, since).json()


def b64(data: bytes) -> str:
    """Base64 text of `data`, as commands carry images."""
    return base64.b64encode(data).decode("ascii")
