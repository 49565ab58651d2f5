"""The MQTT side: topic names, payloads, Home Assistant discovery and the broker connection."""

from .client import MqttClient
from .connection import MqttSetupError
from .topics import Topics

__all__ = ["MqttClient", "MqttSetupError", "Topics"]
