"""Boards of a fleet in the test's own process: real engines and state databases, and an
in-process broker that keeps retained messages as mosquitto does (tests drive who is
connected, and when the command thread's turns run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from personalizer.fleet import Fleet
from tests.support.engine import EngineRig, engine_rig

Handler = Callable[[str, bytes], None]


@dataclass
class Delivered:
    """A message the in-process broker has (acknowledged at once)."""

    def is_published(self) -> bool:
        """Always: the broker took it when it was published."""
        return True


class InProcessBroker:
    """Retained messages and subscriptions, delivered synchronously."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.clients: list[BrokerClient] = []
        self.published: list[tuple[str, str, int]] = []  # (client, topic, bytes)
        self.boards: list[Board] = []

    def settle(self) -> None:
        """Every board's command thread catches up, until no board has anything left to do."""
        for _ in range(50):
            if not any(board.tasks.tasks for board in self.boards):
                for board in self.boards:
                    board.fleet.idle()
                if not any(board.tasks.tasks for board in self.boards):
                    return
            for board in self.boards:
                board.tasks.run()
        raise AssertionError("the boards kept each other busy")

    def client(self, name: str) -> BrokerClient:
        """A client of this broker (not connected yet)."""
        client = BrokerClient(self, name)
        self.clients.append(client)
        return client

    def publish(self, sender: str, topic: str, payload: bytes) -> None:
        """Keep (or, empty, clear) the retained message and hand it to every subscriber."""
        self.published.append((sender, topic, len(payload)))
        if payload:
            self.retained[topic] = payload
        else:
            self.retained.pop(topic, None)
        for client in self.clients:
            client.deliver(topic, payload)

    def under(self, prefix: str) -> dict[str, bytes]:
        """The retained messages whose topic starts with ``prefix``."""
        return {t: p for t, p in self.retained.items() if t.startswith(prefix)}


class BrokerClient:
    """One board's connection (the fleet's transport)."""

    def __init__(self, broker: InProcessBroker, name: str) -> None:
        self.broker = broker
        self.name = name
        self.connected = False
        self.subscriptions: list[tuple[str, Handler]] = []
        self.connect_listeners: list[Callable[[], None]] = []
        self.publish_listeners: list[Callable[[], None]] = []
        self.received = 0  # bytes

    def subscribe(self, pattern: str, handler: Handler) -> None:
        """Subscribe; when connected, the retained messages of ``pattern`` come at once."""
        self.subscriptions = [(p, h) for p, h in self.subscriptions if p != pattern]
        self.subscriptions.append((pattern, handler))
        if self.connected:
            self._retained(pattern, handler)

    def _retained(self, pattern: str, handler: Handler) -> None:
        for topic, payload in list(self.broker.retained.items()):
            if paho.topic_matches_sub(pattern, topic):
                self.received += len(payload)
                handler(topic, payload)

    def fetch_retained(self, topics: list[str]) -> None:
        """The retained messages of exactly ``topics``, again."""
        if not self.connected:
            return
        for topic in topics:
            if topic in self.broker.retained:
                self.deliver(topic, self.broker.retained[topic])

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Called at each connect."""
        self.connect_listeners.append(listener)

    def add_publish_listener(self, listener: Callable[[], None]) -> None:
        """Called when a message of this client was acknowledged (at once, here)."""
        self.publish_listeners.append(listener)

    def publish_retained(self, topic: str, payload: bytes) -> Delivered | None:
        """Publish (None while disconnected)."""
        if not self.connected:
            return None
        self.broker.publish(self.name, topic, payload)
        for listener in self.publish_listeners:
            listener()
        return Delivered()

    def deliver(self, topic: str, payload: bytes) -> None:
        """A message from the broker (only while connected)."""
        if not self.connected:
            return
        for pattern, handler in self.subscriptions:
            if paho.topic_matches_sub(pattern, topic):
                self.received += len(payload)
                handler(topic, payload)
                return

    def connect(self) -> None:
        """Connect: listeners first, then the retained messages (as paho and mosquitto do)."""
        self.connected = True
        for listener in self.connect_listeners:
            listener()
        for pattern, handler in list(self.subscriptions):
            self._retained(pattern, handler)

    def disconnect(self) -> None:
        """Drop the connection."""
        self.connected = False


@dataclass
class TaskQueue:
    """The command thread's queue of fleet turns, run when the test says."""

    tasks: list[Callable[[], None]] = field(default_factory=list)

    def put(self, task: Callable[[], None]) -> bool:
        """Queue a turn."""
        self.tasks.append(task)
        return True

    def run(self, limit: int = 10_000) -> int:
        """Run queued turns until none is left; returns how many ran."""
        ran = 0
        while self.tasks and ran < limit:
            self.tasks.pop(0)()
            ran += 1
        assert not self.tasks, "the fleet kept queueing turns"
        return ran


@dataclass
class Board:
    """An engine in a fleet group, its broker connection and its command thread's queue."""

    rig: EngineRig
    fleet: Fleet
    client: BrokerClient
    tasks: TaskQueue

    def run(self, name: str, fields: dict[str, Any], source: str = "mqtt") -> dict[str, Any]:
        """A command, as the command thread runs it, then every board's fleet turns."""
        result = self.rig.run(name, fields, source)
        self.client.broker.settle()
        return result

    @property
    def counts(self) -> dict[str, int]:
        """Samples per class."""
        return self.rig.model.samples()

    def listing(self) -> list[dict[str, Any]]:
        """Every sample as `cmd/samples` lists it."""
        return self.rig.run("samples", {"limit": 500})["samples"]


def fleet_board(
    tmp_path: Path,
    broker: InProcessBroker,
    bundle: Path,
    name: str,
    connect: bool = True,
    **fleet: Any,
) -> Board:
    """A board named ``name`` in group "shop" (``fleet`` overrides), its state opened and (by
    default) connected to ``broker``."""
    settings = {"group": "shop", "board": name, "train": False, **fleet}
    rig = engine_rig(tmp_path / name, bundle, fleet=settings)
    client = broker.client(name)
    tasks = TaskQueue()
    board = Board(rig, Fleet(rig.config.fleet, rig.engine, client, tasks.put), client, tasks)
    rig.engine.changes.add(board.fleet.changed)
    rig.engine.status.fleet = board.fleet.status
    broker.boards.append(board)
    board.fleet.open()
    if connect:
        client.connect()
    broker.settle()
    return board
