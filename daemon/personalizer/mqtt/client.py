"""The broker connection: with connection.py, the only code that talks to paho-mqtt.

paho-mqtt 2.x with `CallbackAPIVersion.VERSION2`, `connect_async` + `loop_start` (paho's own
network thread), automatic reconnect with backoff, and a retained last will of `offline` on
`<root>/availability`. On every (re)connect it subscribes to the commands (and to what other
parts asked for with :meth:`MqttClient.subscribe`: the fleet's group), announces `online`,
republishes the retained status and pictures and (when enabled) Home Assistant discovery, once the
configs it announced before were read back (announcer.py says why and in which order).

Nothing is queued for an absent broker: while disconnected, predictions, loss, sample events and
command results are dropped (the retained status carries the current counts and is republished on
reconnect). While connected to a broker that does not read, paho's queue of QoS>0 messages is capped
and QoS-0 streams are dropped while too many older ones are unsent (connection.py), so memory stays
bounded. No callback lets an exception escape into paho's network thread.
"""

from __future__ import annotations

import functools
import logging
import ssl
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as paho

from ..config import MqttConfig
from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport
from .connection import StreamSender, build_client
from .discovery import DiscoveryDevice
from .discovery_publisher import DiscoveryPublisher
from .payloads import (
    class_change_payload,
    loss_payload,
    metrics_payload,
    prediction_payload,
    result_payload,
    sample_payload,
    status_payload,
)
from .pictures import RetainedPictures
from .topics import Topics

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, bytes], None]
MessageHandler = Callable[[str, bytes], None]  # topic, payload; called in paho's thread


def _never_raises(method: Callable[..., None]) -> Callable[..., None]:
    """Log and swallow any exception: an exception must never kill paho's network thread."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            log.exception("MQTT callback %s failed (ignored; the connection stays up)", method)

    return wrapper


class MqttClient:
    """Publishes the daemon's events under `<root>` and hands incoming commands to a handler.

    Implements the EventSink protocol (`status`, `prediction`, `loss`, `sample`), plus `result`
    for command results. A prediction that changes the announced class also goes out as a
    `class_change` event, and (with `pictures`) its view as a retained picture, as does a sample's.
    """

    def __init__(
        self,
        config: MqttConfig,
        classes: Mapping[int, str] | Sequence[str],
        version: str,
        on_command: CommandHandler,
        *,
        unknown_label: str = "unknown",
        configuration_url: str | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.classes: dict[int, str] = (
            dict(classes) if isinstance(classes, Mapping) else dict(enumerate(classes))
        )
        self.unknown_label = unknown_label
        self.configuration_url = configuration_url
        self.version = version
        self.on_command = on_command
        self._connected = threading.Event()
        self._status_lock = threading.Lock()
        self._status: bytes | None = None
        self._status_pending = False  # the newest status could not be queued: retry
        self._stopping = False
        self._started = False
        self._connect_failure = ""  # the last reason logged, so a down broker logs once
        self.dropped = 0
        self._subscriptions: list[tuple[str, MessageHandler]] = []
        self._connect_listeners: list[Callable[[], None]] = []
        self._publish_listeners: list[Callable[[], None]] = []
        self._client = self._build_client()
        self._stream = StreamSender(self._client, lambda: self.connected)
        self._pictures = RetainedPictures(
            config.pictures,
            self.topics.pictures,
            lambda topic, payload, retain: self._publish(topic, payload, config.qos, retain),
        )
        self._discovery: DiscoveryPublisher | None = None
        if config.homeassistant_discovery:
            self._discovery = DiscoveryPublisher(
                self._client, self._discovery_device(), config.discovery
            )

    # --- setup ------------------------------------------------------------------------------

    def _build_client(self) -> paho.Client:
        client = build_client(self.config, self.topics.availability)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    @property
    def started(self) -> bool:
        """True once :meth:`start` was called."""
        return self._started

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the connection; True when connected."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Start connecting in the background; returns at once, even if the broker is down."""
        log.info(
            "MQTT: connecting to %s:%d as %s (topics under %s%s)",
            self.config.host,
            self.config.port,
            self.config.client_id,
            self.topics.root,
            ", TLS" if self.config.tls else "",
        )
        self._started = True
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Announce `offline` (retained), disconnect and stop paho's network thread."""
        self._stopping = True
        if self.connected:
            try:
                info = self._client.publish(self.topics.availability, "offline", 1, True)
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not announce offline: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # --- paho callbacks (paho's network thread) ---------------------------------------------

    @_never_raises
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            hint = ""
            if reason_code.value in (4, 5, 134, 135):
                hint = "; check mqtt.username and the password (password_file or credential)"
            log.error(
                "MQTT: broker %s:%d refused the connection: %s%s",
                self.config.host,
                self.config.port,
                reason_code,
                hint,
            )
            return
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)
        self._stream.clear()  # paho discarded the unsent packets of the old link
        self._connect_failure = ""
        if self.config.commands:  # mqtt.commands = false: read-only, nothing to receive
            client.subscribe(self.topics.commands, qos=self.config.qos)
        for pattern, _ in self._subscriptions:
            client.subscribe(pattern, qos=1)
        if self._discovery is not None:
            self._discovery.subscribe()  # announced once our `online` below comes back
        self._connected.set()
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        with self._status_lock:
            if self._status is not None:
                client.publish(self.topics.status, self._status, qos=self.config.qos, retain=True)
                self._status_pending = False
        self._pictures.republish()
        for listener in self._connect_listeners:
            listener()

    @_never_raises
    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError` around the connect attempt, so the
        # reason (refused, unreachable, TLS verification) is the exception being handled.
        reason = str(sys.exc_info()[1] or "unknown reason")
        hint = ""
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            hint = "; check mqtt.ca (the CA that signed the broker's certificate) and mqtt.host"
        level = logging.DEBUG if reason == self._connect_failure else logging.WARNING
        self._connect_failure = reason
        log.log(
            level,
            "MQTT: cannot connect to %s:%d (%s)%s; retrying with backoff",
            self.config.host,
            self.config.port,
            reason,
            hint,
        )

    @_never_raises
    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._discovery is not None:
            self._discovery.disconnected()
        if self._stopping:
            log.info("MQTT: disconnected")
        elif not was_connected:
            # A refused login: its reason was logged by _on_connect; "lost" would mislead.
            log.debug("MQTT: connection closed before it was accepted (%s)", reason_code)
        else:
            log.warning(
                "MQTT: lost the connection to %s:%d (%s); reconnecting with backoff",
                self.config.host,
                self.config.port,
                reason_code,
            )

    @_never_raises
    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        for listener in self._publish_listeners:
            listener()
        # A message left the queue: room for a status that did not fit before. paho holds its
        # queue lock here, so never wait for ours: its holder is publishing a newer status.
        if self._status_pending and self._status_lock.acquire(blocking=False):
            try:
                if self._status_pending and self._status is not None:
                    self._status_pending = not self._publish(
                        self.topics.status, self._status, self.config.qos, retain=True
                    )
            finally:
                self._status_lock.release()

    @_never_raises
    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if self._discovery is not None:
            self._discovery.subscribed(mid, reason_codes)

    @_never_raises
    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        topic = message.topic
        if self._discovery is not None and self._discovery.handle(message):
            return
        for pattern, handler in self._subscriptions:
            if paho.topic_matches_sub(pattern, topic):
                handler(topic, bytes(message.payload))
                return
        name = self.topics.command_name(topic)
        if name is None:
            return
        self.on_command(name, bytes(message.payload))

    # --- what other parts receive and send (the fleet) --------------------------------------

    def subscribe(self, pattern: str, handler: MessageHandler) -> None:
        """Receive the messages of ``pattern`` (QoS 1) from every (re)connect on: ``handler``
        gets each topic and payload in paho's network thread, where it must only queue them.
        Subscribing again (also to a pattern already held) makes the broker send its retained
        messages again."""
        if all(known != pattern for known, _ in self._subscriptions):
            self._subscriptions.append((pattern, handler))
        if self.connected:
            self._client.subscribe(pattern, qos=1)

    def fetch_retained(self, topics: Sequence[str], chunk: int = 100) -> None:
        """Have the broker send the retained messages of exactly ``topics`` again (to the
        handler of the subscription they belong to): each is subscribed to and unsubscribed
        from at once; the broker sends a topic's retained message when it takes the
        subscription. Nothing while disconnected (a reconnect sends them all anyway)."""
        if not self.connected:
            return
        for start in range(0, len(topics), chunk):
            part = list(topics[start : start + chunk])
            self._client.subscribe([(topic, 1) for topic in part])
            self._client.unsubscribe(part)

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every (re)connect, in paho's network thread (only queue)."""
        self._connect_listeners.append(listener)

    def add_publish_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever the broker acknowledged a message, in paho's network
        thread while paho holds its own lock: it must only queue, and never publish."""
        self._publish_listeners.append(listener)

    def publish_retained(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo | None:
        """Publish a retained message with QoS 1 (an empty payload clears the topic's retained
        message); its info tells when the broker has it. None when it was not sent
        (disconnected, or paho's queue is full): the caller sends it again later."""
        return self._send(topic, payload, 1, True)

    # --- publishing -------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | str, qos: int, retain: bool = False) -> bool:
        if self._send(topic, payload, qos, retain) is None:
            self.dropped += 1  # nothing waits for an absent broker
            return False
        return True

    def _send(
        self, topic: str, payload: bytes | str, qos: int, retain: bool
    ) -> paho.MQTTMessageInfo | None:
        """Hand a message to paho; None when disconnected or paho refused it."""
        if not self.connected:
            return None
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.debug("MQTT: publish to %s not sent: %s", topic, paho.error_string(info.rc))
            return None
        return info

    def _publish_stream(self, topic: str, payload: bytes) -> None:
        if not self._stream.send(topic, payload):
            self.dropped += 1

    def _discovery_device(self) -> DiscoveryDevice:
        return DiscoveryDevice(
            prefix=self.config.discovery_prefix,
            topics=self.topics,
            classes=dict(self.classes),
            commands=self.config.commands,
            version=self.version,
            qos=self.config.qos,
            unknown_label=self.unknown_label,
            configuration_url=self.configuration_url,
            pictures=self.config.pictures,
        )

    def status(self, report: StatusReport) -> None:
        """Publish the status, retained; it is also republished on every reconnect.

        When the classes changed (added, renamed, removed on the board), the discovery configs
        follow.
        """
        if report.class_slots and dict(report.class_slots) != self.classes:
            self.classes = dict(report.class_slots)
            if self._discovery is not None:
                self._discovery.changed(self._discovery_device())
        payload = status_payload(report)
        with self._status_lock:
            self._status = payload
            sent = self._publish(self.topics.status, payload, self.config.qos, retain=True)
            # Offline, the reconnect republishes it; a full queue is retried on the next ack.
            self._status_pending = not sent and self.connected

    def prediction(self, event: PredictionEvent) -> None:
        """Publish a prediction (QoS 0; dropped while offline); a change of the announced class
        also as a `class_change` event and (with `pictures`) its picture."""
        self._publish_stream(self.topics.prediction, prediction_payload(event))
        if event.changed:
            self._publish(self.topics.class_change, class_change_payload(event), self.config.qos)
            self._pictures.show(self.topics.class_change_picture, event.view)

    def loss(self, event: LossEvent) -> None:
        """Publish an epoch's loss (QoS 0; dropped while offline)."""
        self._publish_stream(self.topics.loss, loss_payload(event))

    def sample(self, event: SampleEvent) -> None:
        """Publish a stored sample, and (with `pictures`) its picture."""
        self._publish(self.topics.sample, sample_payload(event), self.config.qos)
        self._pictures.show(self.topics.sample_picture, event.view)

    def metrics(self, report: MetricsReport) -> None:
        """Publish a validation estimate, retained (so it is there after a restart of HA)."""
        self._publish(self.topics.metrics, metrics_payload(report), self.config.qos, retain=True)

    def result(self, name: str, result: dict[str, Any]) -> None:
        """Publish the result of the command `name` (dropped while offline)."""
        self._publish(self.topics.result(name), result_payload(result), self.config.qos)
