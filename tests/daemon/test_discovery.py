"""Home Assistant discovery without a broker: the two forms of the configs, and the announcer's
order (a read-back of what was announced before, stale configs cleared, then the announcement).

What Home Assistant makes of these configs is checked by Home Assistant itself: 2024.1's schemas
in tests/ha/test_discovery_in_home_assistant.py, a live 2026.11 in tests/ha/test_live_*.py.
"""

from __future__ import annotations

import json

from personalizer.mqtt.announcer import DiscoveryAnnouncer
from personalizer.mqtt.discovery import (
    DiscoveryDevice,
    DiscoveryMessage,
    announced_components,
    device_message,
    device_topic,
    entity_messages,
)
from personalizer.mqtt.topics import Topics

TOPICS = Topics("pz/kitchen")
NODE = "pz_kitchen"
DEVICE_TOPIC = f"homeassistant/device/{NODE}/config"


def device(classes=None, commands=("sample", "train"), pictures=True) -> DiscoveryDevice:
    return DiscoveryDevice(
        prefix="homeassistant",
        topics=TOPICS,
        classes={0: "cat", 2: "cup"} if classes is None else classes,
        commands=commands,
        version="1.0.0",
        qos=1,
        unknown_label="nothing known",
        pictures=pictures,
    )


def entity_topic(component: str, object_id: str) -> str:
    return f"homeassistant/{component}/{NODE}/{object_id}/config"


def by_topic(messages: list[DiscoveryMessage]) -> dict[str, dict | None]:
    return {m.topic: json.loads(m.payload) if m.payload else None for m in messages}


def test_both_forms_announce_the_same_entities_with_the_same_options():
    entities = by_topic(entity_messages(device()))
    single = json.loads(device_message(device()).payload)
    assert device_message(device()).topic == device_topic("homeassistant", TOPICS) == DEVICE_TOPIC
    shared = {k: v for k, v in single.items() if k != "components"}
    assert shared["device"]["identifiers"] == [NODE] and shared["origin"]["sw_version"] == "1.0.0"
    assert shared["availability_topic"] == "pz/kitchen/availability"
    # Each component, with the options the device form states once, is the entity's config.
    rebuilt = {
        entity_topic(part["platform"], object_id): {
            **shared,
            **{k: v for k, v in part.items() if k != "platform"},
        }
        for object_id, part in single["components"].items()
    }
    assert rebuilt == entities
    assert len({c["unique_id"] for c in entities.values()}) == len(entities)


def test_the_event_types_are_the_classes_and_the_unknown_label_and_pictures_are_images():
    entities = by_topic(entity_messages(device()))
    event = entities[entity_topic("event", "class_change")]
    assert event["event_types"] == ["cat", "cup", "nothing known"]
    assert event["state_topic"] == "pz/kitchen/class_change"
    pictures = {t: c for t, c in entities.items() if t.split("/")[1] == "image"}
    assert {c["image_topic"] for c in pictures.values()} == {
        "pz/kitchen/picture/class_change",
        "pz/kitchen/picture/sample",
    }
    assert all(c["content_type"] == "image/jpeg" for c in pictures.values())
    without = by_topic(entity_messages(device(pictures=False)))
    assert not [t for t in without if t.split("/")[1] == "image"]
    assert set(without) == set(entities) - set(pictures)


def test_announced_components_leave_out_removed_ones_and_unreadable_payloads():
    payload = json.dumps(
        {"cmps": {"a": {"p": "sensor", "stat_t": "x"}, "b": {"platform": "button"}, "c": 3}}
    ).encode()
    assert announced_components(payload) == {"a": "sensor"}
    assert announced_components(b"") == announced_components(b"{not json") == {}
    assert announced_components(b'["a"]') == announced_components(b'{"components": 1}') == {}


def test_nothing_is_announced_until_the_read_back_ends_and_stale_configs_go_first():
    announcer = DiscoveryAnnouncer(device(), "entity")
    announcer.connected()
    leftovers = {
        entity_topic("button", "sample_class_0"): b"{}",  # a name of version 1.0
        entity_topic("button", "sample_slot_1"): b'{"name": "Sample dog"}',  # a removed class
        DEVICE_TOPIC: device_message(device()).payload,  # the other form
    }
    cleared = [
        m for topic, payload in leftovers.items() for m in announcer.read_back(topic, payload)
    ]
    assert cleared == [DiscoveryMessage(topic, b"") for topic in leftovers]
    assert not announcer.ready
    announcement = announcer.caught_up()
    assert announcement == entity_messages(device())
    # What the daemon announced comes back to it, retained or as an echo: nothing to do.
    assert [announcer.read_back(m.topic, m.payload) for m in announcement] == [[]] * len(
        announcement
    )
    assert announcer.read_back(entity_topic("button", "sample_slot_1"), b"") == []


def test_an_older_config_of_a_current_entity_is_replaced_not_cleared():
    announcer = DiscoveryAnnouncer(device(), "entity")
    announcer.connected()
    button = entity_topic("button", "sample_slot_2")
    assert announcer.read_back(button, b'{"name": "Sample mug"}') == []
    assert button in by_topic(announcer.caught_up())


def test_the_device_form_clears_the_entity_form_before_it_announces():
    announcer = DiscoveryAnnouncer(device(), "device")
    announcer.connected()
    cleared = []
    for message in entity_messages(device()):
        cleared += announcer.read_back(message.topic, message.payload)
    assert cleared == [DiscoveryMessage(m.topic, b"") for m in entity_messages(device())]
    assert announcer.caught_up() == [device_message(device())]


def test_the_device_form_removes_components_it_no_longer_announces():
    before = device(classes={0: "cat", 1: "dog", 2: "cup"})
    announcer = DiscoveryAnnouncer(device(), "device")
    announcer.connected()
    # The retained device config of the last run had a class that is gone now.
    assert announcer.read_back(DEVICE_TOPIC, device_message(before).payload) == []
    (announcement,) = announcer.caught_up()
    parts = json.loads(announcement.payload)["components"]
    assert parts["sample_slot_1"] == {"platform": "button"}  # Home Assistant removes it
    assert announced_components(announcement.payload) == announced_components(
        device_message(device()).payload
    )
    # A class removed while running: its button goes the same way; one added comes back.
    (smaller,) = announcer.changed(device(classes={0: "cat"}))
    assert json.loads(smaller.payload)["components"]["sample_slot_2"] == {"platform": "button"}
    (again,) = announcer.changed(device(classes={0: "cat", 2: "cup"}))
    assert json.loads(again.payload)["components"]["sample_slot_2"]["name"] == "Sample cup"


def test_a_stale_config_read_back_after_the_announcement_is_cleared_and_announced_again():
    announcer = DiscoveryAnnouncer(device(), "device")
    announcer.connected()
    announcement = announcer.caught_up()
    sensor = entity_topic("sensor", "samples")  # refused by Home Assistant while it stood
    assert announcer.read_back(sensor, b'{"name": "Samples"}') == [
        DiscoveryMessage(sensor, b""),
        *announcement,
    ]
    # A stale config that collides with nothing announced is only cleared.
    old = entity_topic("button", "train_start")
    assert announcer.read_back(old, b"{}") == [DiscoveryMessage(old, b"")]
    entity_form = DiscoveryAnnouncer(device(), "entity")
    entity_form.connected()
    entities = entity_form.caught_up()
    assert entity_form.read_back(DEVICE_TOPIC, b'{"components": {}}') == [
        DiscoveryMessage(DEVICE_TOPIC, b""),
        *entities,
    ]


def test_changes_while_not_connected_are_announced_after_the_next_read_back():
    announcer = DiscoveryAnnouncer(device(), "entity")
    announcer.connected()
    assert announcer.changed(device(classes={0: "cat"})) == []
    # The removed class's button may still be on the broker from before: it is cleared.
    assert announcer.caught_up() == [
        *entity_messages(device(classes={0: "cat"})),
        DiscoveryMessage(entity_topic("button", "sample_slot_2"), b""),
    ]
    announcer.disconnected()
    assert announcer.changed(device()) == [] and announcer.again() == []
    announcer.connected()
    assert announcer.caught_up() == entity_messages(device())
    # Connected: a removed class's button is cleared at once.
    changed = by_topic(announcer.changed(device(classes={0: "cat"})))
    assert changed[entity_topic("button", "sample_slot_2")] is None
    assert announcer.again() == entity_messages(device(classes={0: "cat"}))
