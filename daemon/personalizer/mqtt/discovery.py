"""Home Assistant MQTT discovery: the retained config messages that make the daemon a device.

Topics follow Home Assistant's documented scheme `<discovery_prefix>/<component>/<node_id>/
<object_id>/config`; every entity shares one `device` block and the daemon's availability topic,
so Home Assistant shows one device with sensors (predicted class, confidence, loss, samples,
training state) and buttons (start/stop training, take a sample of each class).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .topics import Topics

MANUFACTURER = "tflite-personalizer"


@dataclass(frozen=True)
class DiscoveryMessage:
    """One discovery config: publish `payload` retained on `topic`."""

    topic: str
    payload: bytes


def node_id(topics: Topics) -> str:
    """A discovery node id made from the root topic (letters, digits, `_` and `-` only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topics.root)


def _entity(
    base: dict[str, Any], component: str, object_id: str, config: dict[str, Any], prefix: str
) -> DiscoveryMessage:
    node = base["device"]["identifiers"][0]
    document = {**base, **config, "unique_id": f"{node}_{object_id}"}
    topic = f"{prefix}/{component}/{node}/{object_id}/config"
    return DiscoveryMessage(topic, json.dumps(document, separators=(",", ":")).encode("utf-8"))


def discovery_messages(
    prefix: str, topics: Topics, classes: Sequence[str], version: str, qos: int
) -> list[DiscoveryMessage]:
    """Every discovery config for a daemon with these topics and classes."""
    node = node_id(topics)
    base: dict[str, Any] = {
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": qos,
        "device": {
            "identifiers": [node],
            "name": f"Personalizer {topics.root.rsplit('/', 1)[-1]}",
            "manufacturer": MANUFACTURER,
            "model": "on-device personalized image classifier",
            "sw_version": version,
        },
        "origin": {"name": MANUFACTURER, "sw_version": version},
    }
    messages = [
        _entity(
            base,
            "sensor",
            "predicted_class",
            {
                "name": "Predicted class",
                "state_topic": topics.prediction,
                "value_template": "{{ value_json['class'] }}",
                "device_class": "enum",
                "options": list(classes),
                "icon": "mdi:image-search",
            },
            prefix,
        ),
        _entity(
            base,
            "sensor",
            "confidence",
            {
                "name": "Confidence",
                "state_topic": topics.prediction,
                "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
                "unit_of_measurement": "%",
                "state_class": "measurement",
                "icon": "mdi:percent",
            },
            prefix,
        ),
        _entity(
            base,
            "sensor",
            "loss",
            {
                "name": "Training loss",
                "state_topic": topics.loss,
                "value_template": "{{ value_json.loss }}",
                "state_class": "measurement",
                "icon": "mdi:chart-bell-curve-cumulative",
                "entity_category": "diagnostic",
            },
            prefix,
        ),
        _entity(
            base,
            "sensor",
            "samples",
            {
                "name": "Samples",
                "state_topic": topics.status,
                "value_template": "{{ value_json.samples.values() | sum }}",
                "state_class": "measurement",
                "icon": "mdi:image-multiple",
            },
            prefix,
        ),
        _entity(
            base,
            "sensor",
            "training_state",
            {
                "name": "Training",
                "state_topic": topics.status,
                "value_template": "{{ value_json.state }}",
                "device_class": "enum",
                "options": ["idle", "training"],
                "icon": "mdi:school",
            },
            prefix,
        ),
    ]
    for action, label in (("start", "Start training"), ("stop", "Stop training")):
        messages.append(
            _entity(
                base,
                "button",
                f"train_{action}",
                {
                    "name": label,
                    "command_topic": topics.command("train"),
                    "payload_press": json.dumps({"action": action}),
                    "icon": "mdi:play" if action == "start" else "mdi:pause",
                },
                prefix,
            )
        )
    for index, class_name in enumerate(classes):
        messages.append(
            _entity(
                base,
                "button",
                f"sample_class_{index}",
                {
                    "name": f"Sample {class_name}",
                    "command_topic": topics.command("sample"),
                    "payload_press": json.dumps({"class": class_name}),
                    "icon": "mdi:camera",
                },
                prefix,
            )
        )
    return messages
