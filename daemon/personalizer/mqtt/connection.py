"""The paho client as the daemon uses it: protocol, login, TLS, last will, reconnect backoff and
the caps that keep memory bounded while a broker does not read.

Also :class:`StreamSender`, the bounded sending of QoS-0 streams (predictions, loss).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..config import MqttConfig
from ..errors import PersonalizerError

log = logging.getLogger(__name__)

STREAM_QOS = 0  # predictions and loss: a stream where only the newest value matters
RECONNECT_MIN_DELAY = 1
RECONNECT_MAX_DELAY = 30
MAX_QUEUED_MESSAGES = 200  # QoS>0 messages paho holds (it does not count QoS 0)
MAX_UNSENT_STREAM = 20  # QoS-0 messages not yet written to the socket; newer ones are dropped


class MqttSetupError(PersonalizerError):
    """The MQTT client could not be set up from the configuration (TLS files, ...)."""


def _send_without_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    """Switch off Nagle's algorithm: a command's result must not wait ~40 ms for an ACK."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not TCP (a websocket or unix socket): nothing to do
        pass


def build_client(config: MqttConfig, availability: str) -> paho.Client:
    """A paho 2.x client (MQTT 3.1.1, reconnecting with backoff) with ``config``'s login and TLS
    and a retained last will of ``offline`` on ``availability``; callbacks are the caller's.
    MqttSetupError when the TLS files cannot be used."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=config.client_id,
        protocol=paho.MQTTv311,
        reconnect_on_failure=True,
    )
    client.suppress_exceptions = True
    if config.username:
        password = config.password.get_secret_value() if config.password is not None else None
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
    client.will_set(availability, "offline", qos=1, retain=True)
    client.reconnect_delay_set(RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY)
    client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
    client.on_socket_open = _send_without_delay
    return client


class StreamSender:
    """Sends QoS-0 stream messages, dropping new ones while too many older ones are unsent.

    paho caps only its QoS>0 queue: QoS-0 packets wait in an unbounded buffer while the socket
    does not drain (a stalled broker, a slow link). Only the newest value of a stream matters.
    """

    def __init__(self, client: paho.Client, connected: Callable[[], bool]) -> None:
        self._client = client
        self._connected = connected
        self._lock = threading.Lock()
        self._unsent: deque[paho.MQTTMessageInfo] = deque()

    def send(self, topic: str, payload: bytes) -> bool:
        """Queue ``payload`` on ``topic`` (QoS 0); False when it was dropped."""
        with self._lock:
            unsent = self._unsent
            while unsent and unsent[0].is_published():
                unsent.popleft()
            if len(unsent) >= MAX_UNSENT_STREAM or not self._connected():
                return False
            info = self._client.publish(topic, payload, qos=STREAM_QOS)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                return False
            unsent.append(info)
            return True

    def clear(self) -> None:
        """Forget what was unsent: paho discarded the unsent packets of the old link."""
        with self._lock:
            self._unsent.clear()
