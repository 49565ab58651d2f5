"""The live Home Assistant harness's own logic, without Home Assistant (runs as any user).

What the live tests conclude rests on these: which entities a set of discovery configs announces
(both discovery forms, abbreviations, ``~``), what in Home Assistant's log counts as a problem,
what state an entity should show, and how a config flow form is answered.
"""

from __future__ import annotations

import json

import pytest

from personalizer.mqtt.discovery import DiscoveryDevice, discovery_messages
from personalizer.mqtt.topics import Topics
from tests.ha.announced import AnnouncedEntity, entities_of
from tests.ha.ha_log import problems, records
from tests.ha.provisioning import FormError, fill_form
from tests.ha.states import expected_state, same_value

ROOT = "pz/kitchen"


def _device(commands: tuple[str, ...]) -> DiscoveryDevice:
    return DiscoveryDevice(
        prefix="homeassistant",
        topics=Topics(ROOT),
        classes={0: "cat", 2: "cup"},
        commands=commands,
        version="1.0.0",
        qos=1,
    )


def test_every_per_entity_config_of_the_daemon_is_one_announced_entity():
    messages = discovery_messages(_device(("sample", "train")))
    entities = [e for m in messages for e in entities_of(m.topic, m.payload, "homeassistant")]
    assert [e.unique_id for e in entities] == [json.loads(m.payload)["unique_id"] for m in messages]
    assert [e.component for e in entities] == [m.topic.split("/")[1] for m in messages]
    assert all(e.availability_topics() == [f"{ROOT}/availability"] for e in entities)
    assert all(any(t.startswith(ROOT + "/") for t in e.topics()) for e in entities)


def test_a_device_based_config_announces_each_component_with_the_shared_options():
    payload = {
        "dev": {"ids": ["pz_kitchen"], "name": "Kitchen"},
        "o": {"name": "tflite-personalizer"},
        "~": ROOT,
        "avty_t": "~/availability",
        "cmps": {
            "predicted": {"p": "sensor", "uniq_id": "pz_kitchen_predicted", "stat_t": "~/pred"},
            "sample_cat": {"p": "button", "unique_id": "pz_kitchen_cat", "cmd_t": "~/cmd/sample"},
            "sample_dog": {"p": "button"},  # being removed
        },
    }
    entities = entities_of(
        "homeassistant/device/pz_kitchen/config", json.dumps(payload).encode(), "homeassistant"
    )
    assert [(e.component, e.unique_id) for e in entities] == [
        ("sensor", "pz_kitchen_predicted"),
        ("button", "pz_kitchen_cat"),
    ]
    sensor, button = entities
    assert sensor.config["state_topic"] == f"{ROOT}/pred"
    assert button.config["command_topic"] == f"{ROOT}/cmd/sample"
    assert sensor.availability_topics() == button.availability_topics() == [f"{ROOT}/availability"]
    assert sensor.config["device"]["identifiers"] == ["pz_kitchen"]


def test_both_forms_of_the_daemons_discovery_announce_the_same_entities():
    device = _device(("sample", "train"))
    per_entity = [
        e
        for m in discovery_messages(device)
        for e in entities_of(m.topic, m.payload, "homeassistant")
    ]
    (single,) = discovery_messages(device, "device", removed={"sample_slot_5": "button"})
    as_device = entities_of(single.topic, single.payload, "homeassistant")
    assert [(e.component, e.unique_id) for e in as_device] == [
        (e.component, e.unique_id) for e in per_entity
    ]
    assert [dict(e.config) for e in as_device] == [
        {k: v for k, v in e.config.items() if k != "origin"} for e in per_entity
    ]


def test_removed_and_foreign_configs_announce_nothing_and_a_config_needs_a_unique_id():
    assert entities_of("homeassistant/sensor/pz/x/config", b"", "homeassistant") == []
    assert entities_of("other/sensor/pz/x/config", b'{"unique_id": "x"}', "homeassistant") == []
    with pytest.raises(AssertionError, match="no unique_id"):
        entities_of("homeassistant/sensor/pz/x/config", b'{"name": "x"}', "homeassistant")


LOG = """\
2026-12-05 02:30:12.842+00:00 WARNING (MainThread) [homeassistant.bootstrap] Skipping pip
2026-12-05 02:30:14.998+00:00 ERROR (MainThread) [homeassistant.setup] Setup failed for 'assist_pipeline': Unable to import component: No module named 'pymicro_vad'
Traceback (most recent call last):
  File "/opt/homeassistant/lib/python3.14/site-packages/homeassistant/components/assist_pipeline/__init__.py", line 35, in <module>
ModuleNotFoundError: No module named 'pymicro_vad'
2026-12-05 02:31:00.100+00:00 INFO (MainThread) [homeassistant.components.mqtt.discovery] Found new component
2024-01-10 10:00:00.000 ERROR (MainThread) [homeassistant.components.mqtt.entity] Error 'expected SensorDeviceClass' when processing MQTT discovery message topic: 'homeassistant/sensor/pz/bad/config', message: '{}'
2026-12-05 02:31:01.000+00:00 ERROR (MainThread) [homeassistant.helpers.template] Template variable error: 'dict object' has no attribute 'nope' when rendering '{{ value_json.nope }}'
2026-12-05 02:31:02.000+00:00 ERROR (MainThread) [homeassistant.core] Error doing job
Traceback (most recent call last):
  File "/opt/homeassistant/lib/python3.14/site-packages/homeassistant/components/mqtt/client.py", line 1, in x
ValueError: boom
2026-12-05 02:31:03.000+00:00 WARNING (MainThread) [homeassistant.components.sensor] Entity sensor.x from pz/kitchen/status is odd
"""  # noqa: E501


def test_the_log_is_read_as_records_with_their_tracebacks():
    found = records(LOG)
    assert [r.level for r in found] == [
        "WARNING", "ERROR", "INFO", "ERROR", "ERROR", "ERROR", "WARNING",
    ]  # fmt: skip
    assert "ModuleNotFoundError" in found[1].text
    assert found[3].logger == "homeassistant.components.mqtt.entity"  # no UTC offset (2024)


def test_rejected_configs_mqtt_and_template_errors_and_mentions_of_the_daemon_are_problems():
    found = problems(LOG, about=[ROOT])
    assert len(found) == 4
    assert "when processing MQTT discovery message" in found[0]
    assert "Template variable error" in found[1]
    assert "components/mqtt/client.py" in found[2]
    assert "pz/kitchen/status" in found[3]
    assert not any("assist_pipeline" in problem for problem in found)
    assert len(problems(LOG)) == 3


def _entity(component: str, **config: str) -> AnnouncedEntity:
    return AnnouncedEntity(component, "u", config, "t")


def test_the_expected_state_is_what_the_platform_makes_of_the_rendered_value():
    assert expected_state(_entity("sensor"), "cat") == "cat"
    assert expected_state(_entity("sensor"), "None") == "unknown"
    assert expected_state(_entity("sensor"), None) == "unknown"
    assert expected_state(_entity("binary_sensor"), "ON") == "on"
    assert expected_state(_entity("binary_sensor", payload_off="idle"), "idle") == "off"
    assert expected_state(_entity("binary_sensor"), "maybe") is None
    switch = _entity("switch", payload_on="{}", state_on="training", state_off="idle")
    assert (expected_state(switch, "training"), expected_state(switch, "idle")) == ("on", "off")


def test_numbers_compare_within_rounding_and_everything_else_exactly():
    assert same_value("93.0", 93) and same_value(0.1 + 0.2, "0.3")
    assert not same_value("93.1", 93) and not same_value("cat", "Cat")
    assert same_value({"cat": [1, 0.5]}, {"cat": [1.0, "0.5"]})
    assert not same_value({"cat": 1}, {"cat": 1, "cup": 0})
    assert not same_value(True, 1.0)


MQTT_FORM = [
    {"name": "broker", "required": True, "selector": {"text": {}}},
    {"name": "port", "required": True, "default": 1883, "type": "integer"},
    {"name": "username", "required": False, "optional": True},
    {
        "name": "other_settings",
        "type": "expandable",
        "required": True,
        "schema": [
            {"name": "set_client_cert", "required": True, "selector": {"boolean": {}}},
            {"name": "set_ca_cert", "required": True,
             "selector": {"select": {"options": ["off", "auto", "custom"]}}},
            {"name": "transport", "required": True, "default": "tcp",
             "selector": {"select": {"options": [{"value": "tcp"}, {"value": "websockets"}]}}},
            {"name": "keepalive", "required": False, "optional": True},
        ],
    },
]  # fmt: skip


def test_a_config_flow_form_is_answered_from_its_schema():
    assert fill_form(MQTT_FORM, {"broker": "127.0.0.1", "port": 1884}) == {
        "broker": "127.0.0.1",
        "port": 1884,
        "other_settings": {"set_client_cert": False, "set_ca_cert": "off", "transport": "tcp"},
    }
    with pytest.raises(FormError, match="'password'"):
        fill_form([{"name": "password", "required": True, "type": "string"}], {})
