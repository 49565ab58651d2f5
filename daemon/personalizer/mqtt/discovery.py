"""Home Assistant MQTT discovery: the entities the daemon announces, in either of HA's two forms.

Every entity shares one `device` block and the daemon's availability topic. Only what works is
announced:

- sensors: the predicted class (with `unknown`; the scores as attributes), its confidence,
  validation accuracy (retained `metrics`; recall and confusion as attributes), the last
  training loss (retained `status`, republished as epochs finish; whether training is needed
  and how the last cycle ended as attributes), the samples (per class as attributes), the
  warnings;
- a `binary_sensor` for the camera (device class `problem`; the error as an attribute);
- an `event` fired when the announced class changes: its event types are the classes and the
  unknown label, its attributes the confidence (%) and the class before;
- two `image`s while `[mqtt] pictures` is on: the model's view when the announced class last
  changed, and of the last sample (retained JPEGs);
- a `switch` for training and a sample button per class, but only while those commands are
  switched on (`[mqtt] commands`).

The two forms (`[mqtt] discovery`): "entity" publishes one retained config per entity on
`<prefix>/<component>/<node>/<object_id>/config` (every release); "device" publishes one on
`<prefix>/device/<node>/config` whose `components` are the same entities under the same ids
(Home Assistant 2024.11 and later). Both give an entity the same discovery id (`<node>
<object_id>`), and Home Assistant refuses a config for it from one form while the other form's
still stands, so a switch clears the old form first (announcer.py).

Unique ids follow the class *slot*, not the name or the position in a list: renaming a class
keeps its entity, and a new class in a free slot is a new button. An entity no longer announced
(a removed class, a switched-off command, the names of older versions) is removed with an empty
retained config (entity form) or, in the device form, by sending its component with nothing but
its `platform` (Home Assistant keeps a component that is merely left out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .topics import Topics

MANUFACTURER = "tflite-personalizer"
Form = Literal["entity", "device"]
DEVICE_COMPONENT = "device"  # the component part of a device-based discovery topic


@dataclass(frozen=True)
class DiscoveryMessage:
    """One discovery config: publish `payload` retained on `topic` (empty: remove it)."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class DiscoveryDevice:
    """What discovery says about the daemon: its topics, classes, commands and version."""

    prefix: str
    topics: Topics
    classes: Mapping[int, str]  # slot -> name
    commands: Sequence[str]  # the enabled MQTT commands
    version: str
    qos: int
    unknown_label: str = "unknown"
    configuration_url: str | None = None
    pictures: bool = True  # `[mqtt] pictures`: the image entities


@dataclass(frozen=True)
class Component:
    """One entity: its platform (sensor, image, ...), object id and own options."""

    platform: str
    object_id: str
    config: Mapping[str, Any]


def node_id(topics: Topics) -> str:
    """A discovery node id made from the root topic (letters, digits, `_` and `-` only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topics.root)


def config_topic(prefix: str, component: str, node: str, object_id: str) -> str:
    """Where the config of one entity is published (entity form)."""
    return f"{prefix}/{component}/{node}/{object_id}/config"


def device_topic(prefix: str, topics: Topics) -> str:
    """Where the config of the whole device is published (device form)."""
    return f"{prefix}/{DEVICE_COMPONENT}/{node_id(topics)}/config"


def subscriptions(prefix: str, topics: Topics) -> tuple[str, str]:
    """The topic filters that see every config this daemon ever announced, in either form."""
    return f"{prefix}/+/{node_id(topics)}/+/config", device_topic(prefix, topics)


def _device(device: DiscoveryDevice, node: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "identifiers": [node],
        "name": f"Personalizer {device.topics.root.rsplit('/', 1)[-1]}",
        "manufacturer": MANUFACTURER,
        "model": "on-device personalized image classifier",
        "sw_version": device.version,
    }
    if device.configuration_url:
        block["configuration_url"] = device.configuration_url
    return block


def _shared(device: DiscoveryDevice) -> dict[str, Any]:
    """Options every entity has (the device form states them once)."""
    return {
        "availability_topic": device.topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": device.qos,
    }


def components(device: DiscoveryDevice) -> list[Component]:
    """Every entity the daemon announces, in the order of the entity form's messages."""
    topics = device.topics
    names = list(device.classes.values())
    found = [
        Component("sensor", "predicted_class", {
            "name": "Predicted class",
            "state_topic": topics.prediction,
            "value_template": "{{ value_json['class'] }}",
            "device_class": "enum",
            "options": [*names, device.unknown_label],
            "json_attributes_topic": topics.prediction,
            "json_attributes_template": "{{ value_json.scores | tojson }}",
            "icon": "mdi:image-search",
        }),
        Component("sensor", "confidence", {
            "name": "Confidence",
            "state_topic": topics.prediction,
            "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "icon": "mdi:percent",
        }),
        Component("event", "class_change", {
            "name": "Class change",
            "state_topic": topics.class_change,
            "event_types": [*names, device.unknown_label],
            "value_template": (
                "{{ {'event_type': value_json['class'], "
                "'confidence': (value_json.confidence * 100) | round(1), "
                "'previous': value_json.previous} | tojson }}"
            ),
            "icon": "mdi:eye-refresh",
        }),
        Component("sensor", "accuracy", {
            "name": "Validation accuracy",
            "state_topic": topics.metrics,
            "value_template": (
                "{{ (value_json.accuracy * 100) | round(1) "
                "if value_json.accuracy is not none else None }}"
            ),
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "json_attributes_topic": topics.metrics,
            "json_attributes_template": (
                "{{ {'recall': value_json.recall, 'confusion': value_json.confusion, "
                "'unknown_rate': value_json.unknown_rate, 'samples': value_json.samples, "
                "'method': value_json.method} | tojson }}"
            ),
            "icon": "mdi:bullseye-arrow",
            "entity_category": "diagnostic",
        }),
        Component("sensor", "loss", {
            "name": "Training loss",
            "state_topic": topics.status,
            "value_template": "{{ value_json.last_loss }}",
            "state_class": "measurement",
            "suggested_display_precision": 4,
            "json_attributes_topic": topics.status,
            "json_attributes_template": (
                "{{ {'needs_training': value_json.needs_training, 'last_cycle': "
                "value_json.last_cycle.text if value_json.last_cycle else None} | tojson }}"
            ),
            "icon": "mdi:chart-bell-curve-cumulative",
            "entity_category": "diagnostic",
        }),
        Component("sensor", "samples", {
            "name": "Samples",
            "state_topic": topics.status,
            "value_template": "{{ value_json.samples.values() | sum }}",
            "state_class": "measurement",
            "json_attributes_topic": topics.status,
            "json_attributes_template": "{{ value_json.samples | tojson }}",
            "icon": "mdi:image-multiple",
        }),
        Component("sensor", "warnings", {
            "name": "Warnings",
            "state_topic": topics.status,
            "value_template": "{{ value_json.warnings | length }}",
            "json_attributes_topic": topics.status,
            "json_attributes_template": "{{ {'warnings': value_json.warnings} | tojson }}",
            "icon": "mdi:alert-circle-outline",
            "entity_category": "diagnostic",
        }),
        Component("binary_sensor", "camera", {
            "name": "Camera",
            "device_class": "problem",
            "state_topic": topics.status,
            "value_template": (
                "{{ 'OFF' if value_json.camera.ok or value_json.camera.starting else 'ON' }}"
            ),
            "json_attributes_topic": topics.status,
            "json_attributes_template": (
                "{{ {'source': value_json.camera.source, 'error': value_json.camera.error} "
                "| tojson }}"
            ),
            "entity_category": "diagnostic",
        }),
    ]  # fmt: skip
    if device.pictures:
        found += [
            Component("image", "class_change_picture", {
                "name": "Class change picture",
                "image_topic": topics.class_change_picture,
                "content_type": "image/jpeg",
                "icon": "mdi:image-search-outline",
            }),
            Component("image", "sample_picture", {
                "name": "Last sample picture",
                "image_topic": topics.sample_picture,
                "content_type": "image/jpeg",
                "icon": "mdi:image-plus",
            }),
        ]  # fmt: skip
    if "train" in device.commands:
        found.append(
            Component("switch", "training", {
                "name": "Training",
                "command_topic": topics.command("train"),
                "payload_on": json.dumps({"action": "start"}),
                "payload_off": json.dumps({"action": "stop"}),
                "state_topic": topics.status,
                "value_template": "{{ value_json.state }}",
                "state_on": "training",
                "state_off": "idle",
                "icon": "mdi:school",
            })
        )  # fmt: skip
    if "sample" in device.commands:
        for slot, name in sorted(device.classes.items()):
            found.append(
                Component("button", f"sample_slot_{slot}", {
                    "name": f"Sample {name}",
                    "command_topic": topics.command("sample"),
                    "payload_press": json.dumps({"class": name}),
                    "icon": "mdi:camera",
                })
            )  # fmt: skip
    return found


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def entity_messages(device: DiscoveryDevice) -> list[DiscoveryMessage]:
    """The entity form: one config per entity."""
    node = node_id(device.topics)
    base = {
        **_shared(device),
        "device": _device(device, node),
        "origin": {"name": MANUFACTURER, "sw_version": device.version},
    }
    return [
        DiscoveryMessage(
            config_topic(device.prefix, c.platform, node, c.object_id),
            _json({**base, **c.config, "unique_id": f"{node}_{c.object_id}"}),
        )
        for c in components(device)
    ]


def device_message(
    device: DiscoveryDevice, removed: Mapping[str, str] | None = None
) -> DiscoveryMessage:
    """The device form: one config with every entity as a component; ``removed`` (object id ->
    platform) are components announced before that Home Assistant is to remove."""
    node = node_id(device.topics)
    parts: dict[str, dict[str, Any]] = {
        c.object_id: {"platform": c.platform, **c.config, "unique_id": f"{node}_{c.object_id}"}
        for c in components(device)
    }
    for object_id, platform in sorted((removed or {}).items()):
        parts.setdefault(object_id, {"platform": platform})
    document = {
        "device": _device(device, node),
        "origin": {"name": MANUFACTURER, "sw_version": device.version},
        **_shared(device),
        "components": parts,
    }
    return DiscoveryMessage(device_topic(device.prefix, device.topics), _json(document))


def discovery_messages(
    device: DiscoveryDevice, form: Form = "entity", removed: Mapping[str, str] | None = None
) -> list[DiscoveryMessage]:
    """What to publish (retained) to announce ``device`` in ``form``."""
    if form == "device":
        return [device_message(device, removed)]
    return entity_messages(device)


def announced_components(payload: bytes) -> dict[str, str]:
    """The components (object id -> platform) a device-form config announces, leaving out the
    ones it removes (nothing but a platform); nothing for an empty or unreadable payload."""
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    parts = document.get("components", document.get("cmps")) if isinstance(document, dict) else None
    if not isinstance(parts, dict):
        return {}
    found = {}
    for object_id, part in parts.items():
        platform = part.get("platform", part.get("p")) if isinstance(part, dict) else None
        if isinstance(platform, str) and set(part) - {"platform", "p"}:
            found[object_id] = platform
    return found


def stale_topics(announced: Iterable[str], current: Iterable[str]) -> list[str]:
    """The config topics seen on the broker that the current set no longer has."""
    keep = set(current)
    return sorted(topic for topic in set(announced) if topic not in keep)


def clearing(topics: Iterable[str]) -> list[DiscoveryMessage]:
    """Empty retained configs: Home Assistant removes those entities."""
    return [DiscoveryMessage(topic, b"") for topic in topics]
