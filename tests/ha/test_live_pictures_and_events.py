"""The daemon's event and pictures in a real, current Home Assistant (tests/ha/release.py).

What an automation and a dashboard see: the `event` entity fires with the newly announced class
as its event type (the confidence and the class before as attributes), its event types follow
the classes, and the `image` entities show the model's view of the class change and of the last
sample, fetched through Home Assistant's image proxy as a dashboard does.

Needs root; as another user the module skips with one line saying so.
"""

from __future__ import annotations

from personalizer.mqtt.discovery import node_id
from personalizer.mqtt.topics import Topics
from tests.ha.announced import named
from tests.ha.conftest import require_root
from tests.ha.live import LiveHomeAssistant
from tests.support.daemon_harness import CLASSES, Daemon

require_root()


def test_a_class_change_fires_the_event_and_the_pictures_show_what_the_board_saw(
    home_assistant: LiveHomeAssistant, ha_daemon: Daemon
):
    entities = home_assistant.announced(ha_daemon)
    entity_ids = home_assistant.entity_ids(entities)
    node = node_id(Topics(ha_daemon.root))

    def entity_id(object_id: str) -> str:
        return entity_ids[named(entities, node, object_id).unique_id]

    event = entity_id("class_change")
    shown = home_assistant.wait_for_state(event, lambda s: "event_types" in s["attributes"], "set")
    assert shown["attributes"]["event_types"] == [*CLASSES, "unknown"]

    # The camera shows a cat; the board says unknown until it has a sample of it.
    watch = ha_daemon.watch
    mark = watch.mark()
    assert watch.command("sample", {"class": "cat"})["ok"]
    change = watch.wait_for("class_change", lambda m: m.json()["class"] == "cat", since=mark)
    fired = home_assistant.wait_for_state(
        event, lambda s: s["attributes"].get("event_type") == "cat", "fired with cat"
    )
    assert fired["attributes"]["confidence"] == round(change.json()["confidence"] * 100, 1)
    assert fired["attributes"]["previous"] == change.json()["previous"] == "unknown"

    # The pictures: the view of that change, and of the sample.
    picture = watch.wait_for("picture/class_change", since=mark)
    assert picture.received >= change.received
    home_assistant.wait_for_picture(entity_id("class_change_picture"), picture.payload)
    sample = watch.wait_for("picture/sample", since=mark)
    home_assistant.wait_for_picture(entity_id("sample_picture"), sample.payload)

    # The event types follow the classes.
    assert watch.command("class", {"rename": "coffee", "to": "tea"})["ok"]
    home_assistant.wait_for_state(
        event,
        lambda s: s["attributes"].get("event_types") == ["cat", "tea", *CLASSES[2:], "unknown"],
        "renamed",
    )
