"""The broker connection: the only code that talks to paho-mqtt.

paho-mqtt 2.x with `CallbackAPIVersion.VERSION2`, `connect_async` + `loop_start` (paho's own
network thread), automatic reconnect with backoff, and a retained last will of `offline` on
`<root>/availability`. On every (re)connect it subscribes to the commands, announces `online`,
republishes the retained status and (when enabled) Home Assistant discovery.

Nothing is queued for an absent broker: while disconnected, predictions, loss, sample events and
command results are dropped (the retained status carries the current counts and is republished on
reconnect). No callback lets an exception escape into paho's network thread.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..config import MqttConfig
from ..events import LossEvent, PredictionEvent, SampleEvent, StatusReport
from .discovery import discovery_messages
from .payloads import (
    loss_payload,
    prediction_payload,
    result_payload,
    sample_payload,
    status_payload,
)
from .topics import Topics

log = logging.getLogger(__name__)

STREAM_QOS = 0  # predictions and loss: a stream where only the newest value matters
RECONNECT_MIN_DELAY = 1
RECONNECT_MAX_DELAY = 30
MAX_QUEUED_MESSAGES = 200

CommandHandler = Callable[[str, bytes], None]


class MqttSetupError(Exception):
    """The MQTT client could not be set up from the configuration (TLS files, ...)."""


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
    for command results.
    """

    def __init__(
        self,
        config: MqttConfig,
        classes: Sequence[str],
        version: str,
        on_command: CommandHandler,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.classes = tuple(classes)
        self.version = version
        self.on_command = on_command
        self._connected = threading.Event()
        self._status_lock = threading.Lock()
        self._status: bytes | None = None
        self._status_pending = False  # the newest status could not be queued: retry
        self._stopping = False
        self.dropped = 0
        self._client = self._build_client()

    # --- setup ------------------------------------------------------------------------------

    def _build_client(self) -> paho.Client:
        config = self.config
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv311,
            reconnect_on_failure=True,
        )
        client.suppress_exceptions = True
        if config.username:
            password = config.password.reveal() if config.password is not None else None
            client.username_pw_set(config.username, password)
        if config.tls:
            try:
                client.tls_set(
                    ca_certs=str(config.ca) if config.ca else None,
                    certfile=str(config.cert) if config.cert else None,
                    keyfile=str(config.key) if config.key else None,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise MqttSetupError(
                    f"mqtt TLS files cannot be used ({exc}); check mqtt.ca, mqtt.cert, mqtt.key"
                ) from None
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

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
        client.subscribe(self.topics.commands, qos=self.config.qos)
        if self.config.homeassistant_discovery:
            client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
        self._connected.set()
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        with self._status_lock:
            if self._status is not None:
                client.publish(self.topics.status, self._status, qos=self.config.qos, retain=True)
                self._status_pending = False
        self._publish_discovery()

    @_never_raises
    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._connected.clear()
        if self._stopping:
            log.info("MQTT: disconnected")
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
    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        topic = message.topic
        if (
            self.config.homeassistant_discovery
            and topic == f"{self.config.discovery_prefix}/status"
        ):
            if message.payload.strip() == b"online":
                log.info("MQTT: Home Assistant came online; republishing discovery")
                self._publish_discovery()
            return
        name = self.topics.command_name(topic)
        if name is None:
            return
        if len(message.payload) > self.config.max_payload_bytes:
            self.result(
                name,
                {
                    "ok": False,
                    "error": f"payload is {len(message.payload)} bytes, more than the limit of "
                    f"{self.config.max_payload_bytes} (mqtt.max_payload_bytes)",
                    "request_id": None,
                },
            )
            return
        self.on_command(name, bytes(message.payload))

    # --- publishing -------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | str, qos: int, retain: bool = False) -> bool:
        if not self.connected:
            self.dropped += 1  # nothing waits for an absent broker
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.dropped += 1
            log.debug("MQTT: publish to %s not sent: %s", topic, paho.error_string(info.rc))
            return False
        return True

    def _publish_discovery(self) -> None:
        if not self.config.homeassistant_discovery or not self.connected:
            return
        for message in discovery_messages(
            self.config.discovery_prefix, self.topics, self.classes, self.version, self.config.qos
        ):
            self._client.publish(message.topic, message.payload, qos=1, retain=True)

    def status(self, report: StatusReport) -> None:
        """Publish the status, retained; it is also republished on every reconnect."""
        payload = status_payload(report)
        with self._status_lock:
            self._status = payload
            sent = self._publish(self.topics.status, payload, self.config.qos, retain=True)
            # Offline, the reconnect republishes it; a full queue is retried on the next ack.
            self._status_pending = not sent and self.connected

    def prediction(self, event: PredictionEvent) -> None:
        """Publish a prediction (QoS 0; dropped while offline)."""
        self._publish(self.topics.prediction, prediction_payload(event), STREAM_QOS)

    def loss(self, event: LossEvent) -> None:
        """Publish an epoch's loss (QoS 0; dropped while offline)."""
        self._publish(self.topics.loss, loss_payload(event), STREAM_QOS)

    def sample(self, event: SampleEvent) -> None:
        """Publish a stored sample."""
        self._publish(self.topics.sample, sample_payload(event), self.config.qos)

    def result(self, name: str, result: dict[str, Any]) -> None:
        """Publish the result of the command `name` (dropped while offline)."""
        self._publish(self.topics.result(name), result_payload(result), self.config.qos)
