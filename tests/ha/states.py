"""What Home Assistant should show for an announced entity, given what the daemon published.

The expected state is computed by Home Assistant's own template engine (``/api/template``) from
the entity's ``value_template`` and the daemon's latest payload on its ``state_topic``, then
turned into the state the entity platform makes of it (a binary sensor's ``ON`` is ``on``, a
switch's ``state_on`` is ``on``, ``None`` is ``unknown``). The attributes are its
``json_attributes_template`` rendered the same way. So any entity with a state topic is checked,
whatever the daemon announces; components whose state is not a payload (a button's state is
when it was last pressed) are left to the tests that press them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from tests.ha.announced import AnnouncedEntity
from tests.ha.api import HomeAssistantApi

# The platforms whose state is derived from the state topic, and how.
COMPARED = ("sensor", "binary_sensor", "switch")
# Home Assistant's MQTT platforms read this rendered value as "no value".
PAYLOAD_NONE = "None"


def _variables(payload: bytes) -> dict[str, Any]:
    text = payload.decode("utf-8", "replace")
    variables: dict[str, Any] = {"value": text}
    try:
        variables["value_json"] = json.loads(text)
    except ValueError:
        pass
    return variables


class Renderer:
    """Renders templates against payloads with Home Assistant, remembering the answers."""

    def __init__(self, api: HomeAssistantApi) -> None:
        self.api = api
        self._cache: dict[tuple[str, bytes], str] = {}

    def __call__(self, template: str | None, payload: bytes) -> str:
        """`template` rendered with ``value``/``value_json`` of `payload` (no template: the
        payload itself)."""
        if template is None:
            return payload.decode("utf-8", "replace")
        key = (template, payload)
        if key not in self._cache:
            self._cache[key] = self.api.render(template, _variables(payload))
        return self._cache[key]


def expected_state(entity: AnnouncedEntity, rendered: str | None) -> str | None:
    """The state Home Assistant makes of the rendered value (None: it keeps the old state)."""
    if rendered is None or rendered == PAYLOAD_NONE:
        return "unknown"
    config = entity.config
    if entity.component == "sensor":
        return rendered
    payload_on = config.get("payload_on", "ON")
    payload_off = config.get("payload_off", "OFF")
    if entity.component == "switch":
        payload_on = config.get("state_on", payload_on)
        payload_off = config.get("state_off", payload_off)
    if rendered == payload_on:
        return "on"
    if rendered == payload_off:
        return "off"
    return None  # Home Assistant logs "no matching payload" and ignores it


def same_value(expected: Any, actual: Any) -> bool:
    """Equal; numbers (also written as text) within rounding of each other; booleans only to
    booleans."""

    def number(value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual  # True is not 1 here
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(
            same_value(expected[k], actual[k]) for k in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same_value, expected, actual))
    left, right = number(expected), number(actual)
    if left is not None and right is not None:
        return math.isclose(left, right, rel_tol=1e-6, abs_tol=1e-9)
    return expected == actual


def mismatches(
    entities: list[AnnouncedEntity],
    entity_ids: Mapping[str, str],
    latest: Callable[[str], bytes | None],
    states: Mapping[str, Mapping[str, Any]],
    render: Renderer,
) -> list[str]:
    """How Home Assistant's `states` differ from what `latest` payloads make of `entities`.

    `entity_ids` maps unique ids to entity ids; `latest(topic)` is the daemon's latest payload on
    a topic (None: it published none). An empty list means everything matches.
    """
    found = []
    for entity in entities:
        if entity.component not in COMPARED or "state_topic" not in entity.config:
            continue
        entity_id = entity_ids[entity.unique_id]
        shown = states.get(entity_id)
        if shown is None:
            found.append(f"{entity_id}: no state in Home Assistant")
            continue
        payload = latest(entity.config["state_topic"])
        rendered = None if payload is None else render(entity.config.get("value_template"), payload)
        wanted = expected_state(entity, rendered)
        if wanted is not None and not same_value(wanted, shown["state"]):
            found.append(
                f"{entity_id}: state {shown['state']!r}, but {entity.config['state_topic']} "
                f"renders {rendered!r} (expected {wanted!r})"
            )
        topic = entity.config.get("json_attributes_topic")
        attributes = latest(topic) if topic else None
        if attributes is None:
            continue
        text = render(entity.config.get("json_attributes_template"), attributes)
        for key, value in json.loads(text).items():
            if not same_value(value, shown["attributes"].get(key)):
                found.append(
                    f"{entity_id}: attribute {key}={shown['attributes'].get(key)!r}, but "
                    f"{topic} renders {value!r}"
                )
    return found
