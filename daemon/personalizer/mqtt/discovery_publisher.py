"""Home Assistant discovery on the broker connection: the subscriptions that read the daemon's
configs back, and the publishing of what the announcer (announcer.py) decides.

Called from paho's network thread (connect, subscribe and message callbacks) and from the thread
whose status report changed the classes. A decision and its publishing happen under one lock, so
an older announcement never goes out after a newer one. paho's ``publish`` takes paho's own queue
locks inside it; no paho callback that holds those waits for this lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as paho

from .announcer import DiscoveryAnnouncer
from .discovery import DiscoveryDevice, DiscoveryMessage, Form
from .topics import Topics

log = logging.getLogger(__name__)

DISCOVERY_QOS = 1


class DiscoveryPublisher:
    """Keeps the retained discovery configs of one daemon right on one broker connection."""

    def __init__(self, client: paho.Client, device: DiscoveryDevice, form: Form) -> None:
        """Publishes through ``client`` what announces ``device`` in ``form``."""
        self._client = client
        self._prefix = device.prefix
        self._topics: Topics = device.topics
        self._lock = threading.Lock()
        self._announcer = DiscoveryAnnouncer(device, form)
        self._availability_mid: int | None = None  # the subscription that ends the read-back

    def _publish(self, decide: Callable[[], list[DiscoveryMessage]]) -> None:
        with self._lock:
            for message in decide():
                if not message.payload:
                    log.info("MQTT: clearing discovery config %s (not announced)", message.topic)
                self._client.publish(message.topic, message.payload, DISCOVERY_QOS, retain=True)

    def subscribe(self) -> None:
        """On (re)connect, before `online` is published: read back what was announced before
        (it is cleared unless still announced), then our own `online` ends the read-back."""
        with self._lock:
            self._announcer.connected()
        client = self._client
        client.subscribe(f"{self._prefix}/status", qos=DISCOVERY_QOS)
        client.subscribe([(topic, DISCOVERY_QOS) for topic in self._announcer.subscriptions])
        _, self._availability_mid = client.subscribe(self._topics.availability, DISCOVERY_QOS)

    def disconnected(self) -> None:
        """The connection is gone: nothing is announced until the next one was read back."""
        with self._lock:
            self._announcer.disconnected()

    def subscribed(self, mid: int, reason_codes: list[paho.ReasonCode]) -> None:
        """A subscription was answered: without our own `online` coming back (the broker
        refused that one), the announcement cannot wait for it."""
        if mid == self._availability_mid and any(code.is_failure for code in reason_codes):
            log.warning(
                "MQTT: the broker refused a subscription to %s, so discovery is announced "
                "without reading back what was announced before; let the daemon's user read "
                "its own topics",
                self._topics.availability,
            )
            self._publish(self._announcer.caught_up)

    def handle(self, message: paho.MQTTMessage) -> bool:
        """A message about discovery (False: it is none): Home Assistant's `online`, a config
        read back, or our own `online`, which ends the read-back."""
        topic, payload = message.topic, bytes(message.payload)
        if topic == f"{self._prefix}/status":
            if payload.strip() == b"online":
                log.info("MQTT: Home Assistant came online; republishing discovery")
                self._publish(self._announcer.again)
            return True
        if topic == self._topics.availability:
            if payload == b"online" and not message.retain:
                self._publish(self._announcer.caught_up)
            return True
        if topic.startswith(f"{self._prefix}/") and topic.endswith("/config"):
            self._publish(lambda: self._announcer.read_back(topic, payload))
            return True
        return False

    def changed(self, device: DiscoveryDevice) -> None:
        """The classes changed: announce the device as it is now."""
        self._publish(lambda: self._announcer.changed(device))
