"""The daemon in a real, current Home Assistant (tests/ha/release.py), through its APIs.

Each test starts the real daemon with ``homeassistant_discovery = true`` against the broker a
real Home Assistant (in a Debian sid root, tests/ha/installation.py) is connected to, and looks
at the result as a person would, through Home Assistant's REST and websocket APIs. The expected
entities are whatever the daemon announced on the discovery topics (tests/ha/announced.py), so
a new entity is checked without touching these tests. The entities are created from both forms
of discovery (entity and device; test_live_discovery_forms.py switches between them, with states
checked in each). After each test, Home Assistant's log must hold nothing about MQTT or the
daemon (no rejected config, no MQTT warning or traceback).

Needs root; as another user the module skips with one line saying so.
"""

from __future__ import annotations

import json
import time

import pytest

from personalizer.mqtt.discovery import node_id
from personalizer.mqtt.topics import Topics
from tests.ha.announced import AnnouncedEntity, named
from tests.ha.conftest import TIMINGS, require_root
from tests.ha.live import LiveHomeAssistant
from tests.support.daemon_harness import CLASSES, Daemon
from tests.support.photos import photo_b64

require_root()


def _identifiers(entity: AnnouncedEntity) -> set[str]:
    ids = (entity.config.get("device") or {}).get("identifiers") or []
    return {ids} if isinstance(ids, str) else set(ids)


def _named(entities: list[AnnouncedEntity], daemon: Daemon, object_id: str) -> AnnouncedEntity:
    """The entity whose unique id the daemon builds from its node id and `object_id`."""
    return named(entities, node_id(Topics(daemon.root)), object_id)


def _commanding(entities: list[AnnouncedEntity], daemon: Daemon, command: str) -> list:
    """The announced entities that send the MQTT command `command` to the daemon."""
    topic = Topics(daemon.root).command(command)
    return [entity for entity in entities if entity.config.get("command_topic") == topic]


BOTH_FORMS = pytest.mark.parametrize("ha_daemon", ["entity", "device"], indirect=True)


@BOTH_FORMS
def test_every_announced_entity_is_created_under_one_device(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    registry = {entry["entity_id"]: entry for entry in home_assistant.api.entity_registry()}
    for entity in entities:
        assert entity_ids[entity.unique_id].split(".")[0] == entity.component, entity.unique_id
    devices = {registry[entity_ids[entity.unique_id]]["device_id"] for entity in entities}
    assert len(devices) == 1 and None not in devices, devices
    on_device = {entry["entity_id"] for entry in registry.values() if entry["device_id"] in devices}
    assert on_device == set(entity_ids.values())  # nothing else, nothing left over
    device = next(d for d in home_assistant.api.device_registry() if d["id"] in devices)
    announced = set.union(*(_identifiers(entity) for entity in entities))
    assert {("mqtt", identifier) for identifier in announced} <= {
        tuple(pair) for pair in device["identifiers"]
    }
    assert device["sw_version"] and device["manufacturer"]


def test_states_in_home_assistant_match_what_the_daemon_publishes(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    watch = ha_daemon.watch
    assert watch.command("sample", {"class": "cat"})["ok"]
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    home_assistant.wait_states_match(ha_daemon, entities, entity_ids)

    # The ones a person looks at first, spelled out.
    states = home_assistant.api.states()
    prediction = watch.wait_for("prediction", since=watch.mark()).json()
    status = ha_daemon.status(predicate=lambda s: sum(s["samples"].values()) == 1)

    def shown(object_id: str) -> dict:
        return states[entity_ids[_named(entities, ha_daemon, object_id).unique_id]]

    predicted = shown("predicted_class")
    assert predicted["state"] == prediction["class"]
    assert set(predicted["attributes"]["options"]) >= {*CLASSES, "unknown"}
    samples = shown("samples")
    assert float(samples["state"]) == 1 and samples["attributes"]["cat"] == 1
    camera = shown("camera")
    assert camera["state"] == ("off" if status["camera"]["ok"] else "on")
    assert camera["attributes"]["device_class"] == "problem"
    unavailable = [
        e.unique_id for e in entities if states[entity_ids[e.unique_id]]["state"] == "unavailable"
    ]
    assert not unavailable


def test_buttons_pressed_in_home_assistant_reach_the_daemon_and_add_samples(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    buttons = [entity for entity in entities if entity.component == "button"]
    sample_buttons = _commanding(buttons, ha_daemon, "sample")
    assert {json.loads(b.config["payload_press"])["class"] for b in sample_buttons} == set(CLASSES)
    watch = ha_daemon.watch
    added = 0
    for button in buttons:
        mark = watch.mark()
        home_assistant.api.call_service(
            "button", "press", {"entity_id": entity_ids[button.unique_id]}
        )
        topic = button.config["command_topic"]
        sent = watch.wait_for(topic, since=mark, exact_topic=True)
        assert sent.text == button.config.get("payload_press", "PRESS")
        result = watch.wait_for(f"{topic}/result", since=mark, exact_topic=True).json()
        assert result["ok"], (button.unique_id, result)
        if button in sample_buttons:
            name = json.loads(button.config["payload_press"])["class"]
            sample = watch.wait_for("sample", since=mark).json()
            assert (sample["class"], sample["count"]) == (name, 1)
            added += 1
            assert ha_daemon.saved_samples() == added
    # The samples sensor follows: one of each class.
    home_assistant.wait_states_match(ha_daemon, entities, entity_ids)
    samples = home_assistant.api.states()[
        entity_ids[_named(entities, ha_daemon, "samples").unique_id]
    ]
    assert float(samples["state"]) == len(sample_buttons)


def test_training_switch_in_home_assistant_starts_and_stops_training_and_the_loss_follows(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    watch = ha_daemon.watch
    for name in CLASSES[:2]:  # two photos, so the loss has something to learn
        assert watch.command("sample", {"class": name, "image": photo_b64(name)})["ok"]
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    switches = _commanding(entities, ha_daemon, "train")
    assert [s.component for s in switches] == ["switch"]
    switch = entity_ids[switches[0].unique_id]
    loss = entity_ids[_named(entities, ha_daemon, "loss").unique_id]
    home_assistant.wait_for_state(switch, lambda s: s["state"] == "off", "off")

    mark = watch.mark()
    home_assistant.api.call_service("switch", "turn_on", {"entity_id": switch})
    ha_daemon.status(since=mark, predicate=lambda s: s["state"] == "training")
    watch.wait_for("loss", since=mark, timeout=30)  # it really trains
    home_assistant.wait_for_state(switch, lambda s: s["state"] == "on", "on")
    # The loss sensor follows the epochs while training (an epoch every 0.5 s here), from the
    # retained status, which goes out with a new loss at most once a second.
    shown: list[float] = []
    deadline = time.monotonic() + 20
    while len(set(shown)) < 2 and time.monotonic() < deadline:
        state = home_assistant.api.states()[loss]["state"]
        if state not in ("unknown", "unavailable") and (not shown or float(state) != shown[-1]):
            shown.append(float(state))
        time.sleep(0.2)
    published = [m.json()["last_loss"] for m in watch.received("status", since=mark)]
    assert len(set(shown)) >= 2, f"the loss sensor showed only {shown} in 20 s"
    assert set(shown) <= set(published)

    stop = watch.mark()
    home_assistant.api.call_service("switch", "turn_off", {"entity_id": switch})
    ha_daemon.status(since=stop, predicate=lambda s: s["state"] == "idle")
    home_assistant.wait_for_state(switch, lambda s: s["state"] == "off", "off")
    first_loss = watch.wait_for("loss", since=mark).received
    stopped = watch.received("status", since=stop)[0].received
    during = [m for m in watch.received("status", since=mark) if first_loss < m.received < stopped]
    assert len(during) <= stopped - first_loss + 1  # at most about once a second
    time.sleep(0.5)  # an epoch that finished as training stopped still reports its loss
    mark = watch.mark()
    time.sleep(1.5)  # three epoch intervals: no epoch once stopped
    assert watch.received("loss", since=mark) == []


def test_entities_come_back_with_their_states_after_a_home_assistant_restart(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    watch = ha_daemon.watch
    assert watch.command("sample", {"class": "coffee"})["ok"]
    mark = watch.mark()
    assert watch.command("train", {"action": "start"})["ok"]
    watch.wait_for("loss", since=mark, timeout=30)
    assert watch.command("train", {"action": "stop"})["ok"]
    trained = ha_daemon.status(
        since=mark, predicate=lambda s: s["state"] == "idle" and s["last_loss"] is not None
    )
    last_loss = trained["last_loss"]
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    home_assistant.wait_states_match(ha_daemon, entities, entity_ids)
    pictures = {
        entity_ids[_named(entities, ha_daemon, object_id).unique_id]: watch.received(topic)[-1]
        for object_id, topic in (
            ("class_change_picture", "picture/class_change"),
            ("sample_picture", "picture/sample"),
        )
    }

    stopped, running = home_assistant.restart()
    TIMINGS.append(
        f"Home Assistant restart: stopped in {stopped:.1f} s, RUNNING in {running:.1f} s"
    )
    assert home_assistant.entity_ids(entities) == entity_ids  # the same entities, not new ones
    home_assistant.wait_states_match(ha_daemon, entities, entity_ids, timeout=30)
    states = home_assistant.api.states()
    assert not [e for e in entities if states[entity_ids[e.unique_id]]["state"] == "unavailable"]
    samples = states[entity_ids[_named(entities, ha_daemon, "samples").unique_id]]
    assert float(samples["state"]) == 1
    # The last loss and the pictures come from retained messages: still there.
    assert float(states[entity_ids[_named(entities, ha_daemon, "loss").unique_id]]["state"]) == (
        last_loss
    )
    for entity_id, picture in pictures.items():
        home_assistant.wait_for_picture(entity_id, picture.payload)


def test_a_killed_daemon_shows_unavailable_in_home_assistant(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    silent = [e.unique_id for e in entities if not e.availability_topics()]
    assert not silent, f"announced without an availability topic: {silent}"
    home_assistant.wait_states_match(ha_daemon, entities, entity_ids)

    ha_daemon.process.kill()  # SIGKILL: only the broker's last will says it is gone
    for entity in entities:
        home_assistant.wait_for_state(
            entity_ids[entity.unique_id],
            lambda s: s["state"] == "unavailable",
            "unavailable",
            timeout=15,
        )
