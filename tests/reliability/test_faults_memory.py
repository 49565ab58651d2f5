"""A broker that stops reading (slow or absent subscribers, a stalled broker) or is gone never
grows the daemon's memory: paho's out-queue is capped, and QoS-0 predictions are dropped, not
queued, while the broker cannot take them. The Service runs in this process so paho's queue can
be measured, with the real MQTT client and a real mosquitto."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personalizer.events import PredictionEvent
from personalizer.mqtt.connection import MAX_QUEUED_MESSAGES
from tests.support.daemon_harness import CLASSES
from tests.support.faults import rss_bytes, service_config, start_service
from tests.support.mqtt_watch import MqttWatch

ROOT = "pz/faults-memory"
BURST = 30_000  # predictions while the broker takes nothing: ~9 MB of payloads if queued
RSS_LIMIT = 8 * 1024 * 1024


@pytest.fixture
def memory_service(tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path) -> Iterator[Any]:
    """A running in-process daemon, connected to the broker."""
    config = service_config(
        tmp_path, broker, bundle, photo_frames, ROOT, {"mqtt": {"keepalive": 60}}
    )
    service = start_service(config)
    try:
        assert service.mqtt.wait_connected(20)
        yield service
    finally:
        if broker.process is not None:
            broker.process.send_signal(signal.SIGCONT)
        service.shutdown()


def flood(service: Any, count: int) -> int:
    """Publish `count` predictions as fast as possible; returns the largest out-queue seen."""
    scores = {name: 1.0 / len(CLASSES) for name in CLASSES}
    client = service.mqtt._client  # paho's queue: what would grow without a bound
    largest = 0
    for number in range(count):
        service.mqtt.prediction(PredictionEvent(CLASSES[0], 0.25, scores, time.time(), number))
        if number % 100 == 0:
            largest = max(largest, len(client._out_messages), len(client._out_packet))
    return largest


def test_a_stalled_broker_does_not_grow_the_queue_or_memory(
    memory_service: Any, broker: Any
) -> None:
    service = memory_service
    watch = MqttWatch(broker.host, broker.port, ROOT).start()
    watch.close()  # a subscriber that went away
    flood(service, 2_000)  # warm up: payload building, paho's buffers
    rss_before = rss_bytes_self()
    broker.process.send_signal(signal.SIGSTOP)  # the connection stays up; nothing is read
    try:
        largest = flood(service, BURST)
        grown = rss_bytes_self() - rss_before
    finally:
        broker.process.send_signal(signal.SIGCONT)
    assert largest <= MAX_QUEUED_MESSAGES + 1, f"paho queued {largest} messages"
    assert service.mqtt.dropped >= BURST // 2, "predictions were queued, not dropped"
    assert grown < RSS_LIMIT, f"RSS grew by {grown / 1e6:.1f} MB for {BURST} predictions"
    # And the connection works again once the broker reads: nothing is stuck.
    assert service.mqtt.wait_connected(20)
    with MqttWatch(broker.host, broker.port, ROOT) as watch:
        watch.wait_for("prediction", timeout=20)


def test_predictions_are_dropped_while_the_broker_is_down(memory_service: Any, broker: Any) -> None:
    service = memory_service
    broker.stop()
    deadline = time.monotonic() + 10
    while service.mqtt.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not service.mqtt.connected
    dropped = service.mqtt.dropped
    client = service.mqtt._client
    # Packets paho still held when the connection broke may stay; the flood must add none.
    left = max(len(client._out_messages), len(client._out_packet))
    rss_before = rss_bytes_self()
    largest = flood(service, BURST)
    assert largest <= max(left, 1), f"{largest} messages queued for an absent broker"
    assert service.mqtt.dropped - dropped >= BURST
    assert rss_bytes_self() - rss_before < RSS_LIMIT
    broker.start()
    assert service.mqtt.wait_connected(40), "no reconnect after the broker came back"


def rss_bytes_self() -> int:
    """This process's RSS (the in-process daemon's)."""
    import os

    return rss_bytes(os.getpid())
