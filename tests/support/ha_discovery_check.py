"""Check discovery configs with Home Assistant's own code (runs in the Home Assistant venv).

Usage: python ha_discovery_check.py < input.json > output.json

Input: ``{"configs": [{"topic", "payload"}], "states": {topic: payload text}}``: the discovery
messages, and a real payload of each state topic the daemon publishes. For every config this:

1. matches the topic with Home Assistant's discovery topic pattern and supported components;
2. validates the payload with the MQTT platform's ``DISCOVERY_SCHEMA`` (the schema Home
   Assistant applies to discovery messages) and lists the keys it dropped as unknown;
3. renders every template with Home Assistant's template engine against the state payloads,
   and checks the results the way the entity would use them (an enum sensor's state is one of
   its options, a numeric sensor's a number or "None", a binary sensor's ON/OFF, a switch's one
   of its states, an event's a JSON object whose `event_type` is one of its `event_types`,
   attributes a JSON object).

Output: ``[{"topic", "errors": [...], "dropped": [...], "rendered": {...}}]``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import tempfile
from types import ModuleType
from typing import Any

import homeassistant.components.persistent_notification  # noqa: F401 - import order (cycle)
from homeassistant.components.mqtt.discovery import SUPPORTED_COMPONENTS, TOPIC_MATCHER
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template

NUMERIC_UNITS = ("%",)


def _platform(component: str) -> tuple[ModuleType | None, str]:
    """The MQTT platform module of `component` (sensor, image, event, ...), or why there is none."""
    name = f"homeassistant.components.mqtt.{component}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None, f"component {component} not supported"
        # e.g. the camera platform needs numpy, which the venv has no reason to hold
        return None, f"the MQTT {component} platform does not import here: {error}"
    if not hasattr(module, "DISCOVERY_SCHEMA"):
        return None, f"component {component} has no discovery schema"
    return module, ""


def _render(hass: HomeAssistant, template: str, payload: str) -> str:
    try:
        value_json = json.loads(payload)
    except ValueError:
        value_json = None
    variables = {"value": payload, "value_json": value_json}
    return Template(template, hass).async_render(variables, parse_result=False)


def _event_errors(value: str, event_types: list[str]) -> list[str]:
    """What an event entity would refuse in a rendered value (its own rule: a JSON object with
    an `event_type` it declares; the other keys become attributes)."""
    try:
        event = json.loads(value)
    except ValueError:
        return [f"event value is not JSON: {value[:80]}"]
    if not isinstance(event, dict) or "event_type" not in event:
        return [f"event value has no event_type: {value[:80]}"]
    if event["event_type"] not in event_types:
        return [f"event_type {event['event_type']!r} is not one of {event_types}"]
    return []


def _check(hass: HomeAssistant, topic: str, payload: dict[str, Any], states: dict[str, str]):
    errors: list[str] = []
    rendered: dict[str, str] = {}
    # Home Assistant matches the topic below its discovery prefix.
    match = TOPIC_MATCHER.match(topic.split("/", 1)[1] if "/" in topic else topic)
    if match is None:
        return {"topic": topic, "errors": ["topic does not match Home Assistant's pattern"]}
    component = match.group("component")
    if component not in SUPPORTED_COMPONENTS:
        return {"topic": topic, "errors": [f"component {component} not supported"]}
    platform, why = _platform(component)
    if platform is None:
        return {"topic": topic, "errors": [why]}
    try:
        validated = platform.DISCOVERY_SCHEMA(dict(payload))
    except Exception as exc:  # voluptuous.Invalid and friends
        return {"topic": topic, "errors": [f"schema: {exc}"], "dropped": []}
    dropped = sorted(set(payload) - set(validated))
    for key in ("value_template", "json_attributes_template"):
        if key not in payload:
            continue
        source = payload["state_topic" if key == "value_template" else "json_attributes_topic"]
        if source not in states:
            errors.append(f"{key}: no example payload for {source}")
            continue
        try:
            rendered[key] = _render(hass, payload[key], states[source])
        except Exception as exc:
            errors.append(f"{key} does not render: {exc!r}")
    value = rendered.get("value_template")
    if value is not None:
        if payload.get("device_class") == "enum" and value not in payload.get("options", []):
            errors.append(f"enum state {value!r} is not one of {payload.get('options')}")
        numeric = payload.get("state_class") == "measurement"
        if numeric and value != "None":
            try:
                float(value)
            except ValueError:
                errors.append(f"numeric sensor state {value!r} is not a number")
        if component == "binary_sensor" and value not in ("ON", "OFF"):
            errors.append(f"binary sensor state {value!r} is neither ON nor OFF")
        if component == "switch" and value not in (payload["state_on"], payload["state_off"]):
            errors.append(f"switch state {value!r} is neither state_on nor state_off")
        if component == "event":
            errors += _event_errors(value, payload["event_types"])
    attributes = rendered.get("json_attributes_template")
    if attributes is not None:
        try:
            if not isinstance(json.loads(attributes), dict):
                errors.append("json attributes are not an object")
        except ValueError:
            errors.append(f"json attributes are not JSON: {attributes[:80]}")
    return {"topic": topic, "errors": errors, "dropped": dropped, "rendered": rendered}


async def _main() -> None:
    request = json.load(sys.stdin)
    hass = HomeAssistant(tempfile.mkdtemp(prefix="ha-check-"))
    try:
        results = [
            _check(hass, c["topic"], json.loads(c["payload"]), request["states"])
            for c in request["configs"]
        ]
    finally:
        await hass.async_stop(force=True)
    json.dump({"version": HA_VERSION, "results": results}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(_main())
