"""The entities a daemon announced, read from the discovery configs it published.

Nothing here knows how many entities there are or which: they are whatever the retained configs
under the discovery prefix say, so an entity the daemon starts announcing is checked by every
live test at once. Both of Home Assistant's documented forms are read:

- one config per entity on ``<prefix>/<component>/[<node_id>/]<object_id>/config``;
- one device-based config on ``<prefix>/device/<object_id>/config`` (Home Assistant 2024.11+)
  whose ``components`` (``cmps``) each name their ``platform`` (``p``) and inherit the shared
  options (availability, state topic, ...); a component with nothing but its platform is one
  being removed, not announced.

Keys may be abbreviated (``stat_t``, ``uniq_id``, ...): :data:`ALIASES` expands the ones these
tests read, and ``~`` in a topic is replaced by the config's ``~`` value, as Home Assistant does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.mqtt_watch import MqttWatch

# Home Assistant's abbreviations of the keys read here (its MQTT docs list them all).
ALIASES = {
    "avty": "availability",
    "avty_t": "availability_topic",
    "cmd_t": "command_topic",
    "cmps": "components",
    "dev": "device",
    "ids": "identifiers",
    "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "o": "origin",
    "p": "platform",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "pl_prs": "payload_press",
    "stat_off": "state_off",
    "stat_on": "state_on",
    "stat_t": "state_topic",
    "t": "topic",
    "uniq_id": "unique_id",
    "val_tpl": "value_template",
}
# The component whose config carries a whole device's entities.
DEVICE_COMPONENT = "device"


@dataclass(frozen=True)
class AnnouncedEntity:
    """One entity of a discovery config, with its options expanded."""

    component: str  # Home Assistant's entity domain: sensor, switch, button, ...
    unique_id: str
    config: Mapping[str, Any]
    topic: str  # the discovery topic that announced it

    def topics(self) -> list[str]:
        """Every MQTT topic the entity uses (state, command, attributes, availability, ...)."""
        found = [v for k, v in self.config.items() if k.endswith("topic") and isinstance(v, str)]
        for item in self.config.get("availability") or []:
            if isinstance(item, Mapping) and isinstance(item.get("topic"), str):
                found.append(item["topic"])
        return found

    def availability_topics(self) -> list[str]:
        """The topics whose payload makes the entity available or not."""
        found = [self.config["availability_topic"]] if "availability_topic" in self.config else []
        for item in self.config.get("availability") or []:
            if isinstance(item, Mapping) and "topic" in item:
                found.append(item["topic"])
        return found


def expand(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with abbreviated keys spelled out (also in nested objects) and ``~`` applied."""

    def spell(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {ALIASES.get(k, k): spell(v) for k, v in value.items()}
        if isinstance(value, list):
            return [spell(v) for v in value]
        return value

    expanded = spell(config)
    base = expanded.get("~")
    if isinstance(base, str):

        def tilde(value: Any, key: str = "") -> Any:
            if isinstance(value, Mapping):
                return {k: tilde(v, k) for k, v in value.items()}
            if isinstance(value, list):
                return [tilde(v, key) for v in value]
            if isinstance(value, str) and key.endswith("topic"):
                if value.startswith("~"):
                    return base + value[1:]
                if value.endswith("~"):
                    return value[:-1] + base
            return value

        expanded = tilde(expanded)
    return expanded


def _entity(component: str, config: dict[str, Any], topic: str) -> AnnouncedEntity:
    unique_id = config.get("unique_id")
    if not unique_id:
        raise AssertionError(
            f"the {component} config on {topic} has no unique_id: Home Assistant cannot register "
            "it or put it under a device"
        )
    return AnnouncedEntity(component, str(unique_id), config, topic)


def entities_of(topic: str, payload: bytes, prefix: str) -> list[AnnouncedEntity]:
    """The entities one retained discovery config announces (none for an empty payload)."""
    if not payload or not topic.startswith(prefix + "/") or not topic.endswith("/config"):
        return []
    component = topic[len(prefix) + 1 :].split("/", 1)[0]
    config = expand(json.loads(payload))
    if component != DEVICE_COMPONENT:
        return [_entity(component, config, topic)]
    parts = config.pop("components", None) or {}
    shared = {k: v for k, v in config.items() if k not in ("origin",)}
    entities = []
    for object_id, part in parts.items():
        options = dict(part)
        platform = options.pop("platform", None)
        if not platform:
            raise AssertionError(f"component {object_id!r} of {topic} names no platform")
        if options:  # nothing but the platform: Home Assistant removes the component
            entities.append(_entity(platform, {**shared, **options}, topic))
    return entities


def named(entities: list[AnnouncedEntity], node: str, object_id: str) -> AnnouncedEntity:
    """The entity whose unique id a daemon builds from its node id and `object_id`."""
    unique_id = f"{node}_{object_id}"
    found = [entity for entity in entities if entity.unique_id == unique_id]
    assert found, f"no {unique_id} was announced: {[e.unique_id for e in entities]}"
    return found[0]


def retained_configs(watch: MqttWatch, prefix: str) -> dict[str, bytes]:
    """The latest payload of every discovery config topic `watch` saw (empty: removed)."""
    configs: dict[str, bytes] = {}
    for message in list(watch.messages):
        if message.topic.startswith(prefix + "/") and message.topic.endswith("/config"):
            configs[message.topic] = message.payload
    return configs


def announced_by(
    watch: MqttWatch, prefix: str, root: str, quiet: float = 1.0, timeout: float = 30.0
) -> list[AnnouncedEntity]:
    """The entities announced by the daemon whose root topic is `root`: those of the configs
    `watch` saw under `prefix` that use one of the daemon's topics. Waits until the daemon has
    announced something and then `quiet` seconds pass without a new config."""
    deadline = time.monotonic() + timeout
    seen, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        configs = retained_configs(watch, prefix)
        entities = [
            entity
            for topic, payload in sorted(configs.items())
            for entity in entities_of(topic, payload, prefix)
            if any(t.startswith(root + "/") for t in entity.topics())
        ]
        count = len(watch.messages)
        if count != seen:
            seen, changed = count, time.monotonic()
        elif entities and time.monotonic() - changed >= quiet:
            return entities
        time.sleep(0.1)
    raise AssertionError(
        f"no discovery config under {prefix}/ names a topic of {root} in {timeout} s"
    )
