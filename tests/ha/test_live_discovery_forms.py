"""Switching `[mqtt] discovery` between the entity and the device form, in a real, current Home
Assistant (tests/ha/release.py).

Home Assistant refuses a config for an entity while the other form's config for it still stands,
so the daemon clears the old form before it announces the new one. After each switch the same
entities must stand under the same entity ids, on one device with nothing left over, available,
with the name a person gave one of them, and Home Assistant must have logged nothing (the
autouse check in conftest.py). A class removed in the device form must go from Home Assistant.

Needs root; as another user the module skips with one line saying so.
"""

from __future__ import annotations

from pathlib import Path

from personalizer.mqtt.discovery import device_topic, node_id
from personalizer.mqtt.topics import Topics
from tests.ha.announced import AnnouncedEntity, named, retained_configs
from tests.ha.conftest import require_root, start_ha_daemon
from tests.ha.live import DISCOVERY_PREFIX, LiveHomeAssistant
from tests.support.daemon_harness import Daemon, stop

require_root()

ROOT = "pz/switching"
NODE = node_id(Topics(ROOT))
NAME = "Cat counter"  # given to the samples sensor in Home Assistant


def _on_the_device(home_assistant: LiveHomeAssistant, entity_ids: dict[str, str]) -> set[str]:
    """The entity ids registered on the device of `entity_ids` (one device, checked)."""
    registry = home_assistant.api.entity_registry()
    devices = {e["device_id"] for e in registry if e["entity_id"] in entity_ids.values()}
    assert len(devices) == 1 and None not in devices, devices
    return {e["entity_id"] for e in registry if e["device_id"] in devices}


def _switched(
    home_assistant: LiveHomeAssistant, daemon: Daemon, form: str, since: int
) -> list[AnnouncedEntity]:
    """The entities once `daemon` (started at mark `since` of the discovery watch) announced
    itself in `form`, having cleared the other form."""
    watch = home_assistant.discovery
    single = device_topic(DISCOVERY_PREFIX, Topics(ROOT))
    announced = (lambda m: bool(m.payload)) if form == "device" else (lambda m: not m.payload)
    watch.wait_for(single, announced, exact_topic=True, since=since)
    entities = home_assistant.announced(daemon)
    topics = {entity.topic for entity in entities}
    if form == "device":
        assert topics == {single}
    else:
        assert single not in topics and len(topics) == len(entities)
    # What the other form announced is gone from the broker.
    leftovers = [
        topic
        for topic, payload in retained_configs(watch, DISCOVERY_PREFIX).items()
        if f"/{NODE}/" in topic and payload and topic not in topics
    ]
    assert not leftovers, leftovers
    return entities


def test_switching_the_discovery_form_keeps_the_entities_and_leaves_nothing_stale(
    tmp_path: Path, home_assistant: LiveHomeAssistant, bundle: Path, daemons: list[Daemon]
):
    daemon = start_ha_daemon(tmp_path, home_assistant, bundle, daemons, "entity", ROOT)
    entities = home_assistant.announced(daemon)
    entity_ids = home_assistant.entity_ids(entities)
    samples = entity_ids[named(entities, NODE, "samples").unique_id]
    home_assistant.api.websocket(
        {"type": "config/entity_registry/update", "entity_id": samples, "name": NAME}
    )

    for form in ("device", "entity"):
        stop(daemon)
        mark = home_assistant.discovery.mark()
        daemon = start_ha_daemon(tmp_path, home_assistant, bundle, daemons, form, ROOT)
        switched = _switched(home_assistant, daemon, form, mark)
        assert {e.unique_id for e in switched} == set(entity_ids)
        assert home_assistant.entity_ids(switched) == entity_ids  # the same entity ids
        assert _on_the_device(home_assistant, entity_ids) == set(entity_ids.values())
        home_assistant.wait_states_match(daemon, switched, entity_ids)
        states = home_assistant.api.states()
        assert not [i for i in entity_ids.values() if states[i]["state"] == "unavailable"]
        entry = next(e for e in home_assistant.api.entity_registry() if e["entity_id"] == samples)
        assert entry["name"] == NAME, form

        if form == "device":  # a class removed on the board: its button goes from HA too
            button = named(switched, NODE, "sample_slot_3").unique_id
            assert daemon.watch.command("class", {"remove": "astronaut"})["ok"]
            home_assistant.wait_removed(entity_ids.pop(button))
