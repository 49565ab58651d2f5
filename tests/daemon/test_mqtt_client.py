"""The MQTT layer against a real mosquitto: availability, retained status, commands, discovery."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from personalizer.config import MqttConfig
from personalizer.events import (
    CameraStatus,
    LossEvent,
    PredictionEvent,
    SampleEvent,
    StatusReport,
)
from personalizer.mqtt import MqttClient
from tests.support import photos
from tests.support.mqtt_watch import MqttWatch
from tests.support.waiting import wait_until

CLASSES = ("cup", "pen")


def status(samples: int = 0) -> StatusReport:
    return StatusReport(
        "idle", CLASSES, {"cup": samples, "pen": 0}, "abc123", "1.0.0", CameraStatus("replay", True)
    )


@pytest.fixture
def make_client(broker):
    clients = []

    def make(root: str, on_command=lambda name, payload: None, **options) -> MqttClient:
        config = MqttConfig(
            host=broker.host,
            port=broker.port,
            topic_prefix=root,
            client_id=f"test-{root.replace('/', '-')}",
            keepalive=5,
            **options,
        )
        client = MqttClient(config, CLASSES, "1.0.0", on_command)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop(timeout=1)


def test_online_and_status_are_retained_for_late_subscribers(broker, make_client):
    client = make_client("t/retained")
    client.status(status(3))
    client.start()
    assert client.wait_connected(10)
    time.sleep(0.3)
    with MqttWatch(broker.host, broker.port, "t/retained") as watch:  # subscribes afterwards
        online = watch.wait_for("availability")
        assert online.text == "online" and online.retain
        reported = watch.wait_for("status")
        assert reported.retain
        assert reported.json() == {
            "state": "idle",
            "classes": ["cup", "pen"],
            "samples": {"cup": 3, "pen": 0},
            "bundle": "abc123",
            "version": "1.0.0",
            "camera": {"source": "replay", "ok": True, "error": None, "starting": False},
            "warnings": [],
            "capacity": 0,
            "progress": None,
            "last_loss": None,
            "needs_training": False,
            "last_cycle": None,
            "region": None,
            "variety": {},
            "review_pending": 0,
        }
    client.stop()
    with MqttWatch(broker.host, broker.port, "t/retained") as watch:
        assert watch.wait_for("availability").text == "offline"


def test_commands_reach_the_handler_and_a_failing_handler_does_not_break_the_client(
    broker, make_client
):
    received = []

    def handler(name: str, payload: bytes) -> None:
        received.append((name, payload))
        if payload == b"boom":
            raise RuntimeError("handler bug")

    client = make_client("t/cmd", handler)
    client.start()
    assert client.wait_connected(10)
    with MqttWatch(broker.host, broker.port, "t/cmd") as watch:
        watch.publish("cmd/save", "boom")
        watch.publish("cmd/sample", '{"class": "cup"}')
        watch.publish("cmd/sample/result", "not a command")  # results are not commands
        watch.publish("cmd/sample", b"x" * 2000)  # the parser (not paho's thread) checks sizes
        wait_until(lambda: len(received) >= 3, 5, "three commands")
    assert received == [("save", b"boom"), ("sample", b'{"class": "cup"}'), ("sample", b"x" * 2000)]
    assert client.connected


def test_status_is_republished_after_the_broker_comes_back_and_nothing_else_is_queued(
    broker, make_client
):
    client = make_client("t/reconnect")
    client.status(status(1))
    client.start()
    assert client.wait_connected(10)
    broker.stop()  # the broker forgets everything (no persistence)
    deadline = time.monotonic() + 10
    while client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.connected
    # While the broker is away: status changes are kept, streams and results are dropped.
    client.status(status(2))
    client.prediction(PredictionEvent("cup", 0.9, {"cup": 0.9, "pen": 0.1}, time.time(), 1))
    client.loss(LossEvent(0.5, 1, 3, time.time()))
    client.result("save", {"ok": True, "request_id": None})
    broker.start()
    with MqttWatch(broker.host, broker.port, "t/reconnect") as watch:
        assert client.wait_connected(40)
        assert watch.wait_for("availability", lambda m: m.text == "online", 10)
        assert watch.wait_for("status", timeout=10).json()["samples"] == {"cup": 2, "pen": 0}
        time.sleep(1.0)
        topics = {m.topic for m in watch.messages}
    assert topics == {"t/reconnect/availability", "t/reconnect/status"}


def test_home_assistant_discovery_describes_one_device_and_is_republished_on_ha_restart(
    broker, make_client
):
    client = make_client("t/ha/kitchen", homeassistant_discovery=True)
    with MqttWatch(broker.host, broker.port, "t/ha/kitchen", ("homeassistant/#",)) as watch:
        client.start()
        assert client.wait_connected(10)
        node = "t_ha_kitchen"
        sensor = watch.wait_for(
            f"homeassistant/sensor/{node}/predicted_class/config", exact_topic=True
        )
        config = sensor.json()
        assert config["state_topic"] == "t/ha/kitchen/prediction"
        assert config["device_class"] == "enum"
        assert config["options"] == ["cup", "pen", "unknown"]
        assert config["value_template"] == "{{ value_json['class'] }}"
        assert config["availability_topic"] == "t/ha/kitchen/availability"
        assert config["payload_available"] == "online"
        assert config["unique_id"] == f"{node}_predicted_class"
        assert config["device"]["identifiers"] == [node]
        button = watch.wait_for(
            f"homeassistant/button/{node}/sample_slot_1/config", exact_topic=True
        ).json()
        assert button["command_topic"] == "t/ha/kitchen/cmd/sample"
        assert json.loads(button["payload_press"]) == {"class": "pen"}
        assert button["unique_id"] == f"{node}_sample_slot_1"
        switch = watch.wait_for(
            f"homeassistant/switch/{node}/training/config", exact_topic=True
        ).json()
        assert json.loads(switch["payload_on"]) == {"action": "start"}
        assert (switch["state_on"], switch["state_off"]) == ("training", "idle")
        camera = watch.wait_for(
            f"homeassistant/binary_sensor/{node}/camera/config", exact_topic=True
        ).json()
        assert camera["device_class"] == "problem" and camera["state_topic"].endswith("/status")
        for object_id in ("confidence", "loss", "samples", "accuracy", "warnings"):
            watch.wait_for(f"homeassistant/sensor/{node}/{object_id}/config", exact_topic=True)
        mark = watch.mark()
        watch.client.publish("homeassistant/status", "online").wait_for_publish(5)
        watch.wait_for(
            f"homeassistant/sensor/{node}/predicted_class/config", exact_topic=True, since=mark
        )
    with MqttWatch(broker.host, broker.port, "t/ha/kitchen", ("homeassistant/#",)) as late:
        retained = late.wait_for(
            f"homeassistant/sensor/{node}/predicted_class/config", exact_topic=True
        )
        assert retained.retain and retained.json() == config


def _retained_configs(broker, root: str) -> dict[str, dict]:
    """The discovery configs the broker keeps for the node of ``root`` (non-empty ones)."""
    node = root.replace("/", "_")
    with MqttWatch(broker.host, broker.port, root, (f"homeassistant/+/{node}/+/config",)) as w:
        time.sleep(1.0)
        found = {
            m.topic: m.json()
            for m in w.messages
            if m.retain and m.payload and m.topic.endswith("/config")
        }
    return found


def test_discovery_follows_the_classes_and_clears_what_it_no_longer_announces(broker, make_client):
    root, node = "t/ha/shed", "t_ha_shed"
    with MqttWatch(broker.host, broker.port, root, ()) as old:
        # What an older version left: a button per list position, start/stop buttons.
        for legacy in ("button/t_ha_shed/sample_class_0", "button/t_ha_shed/train_start"):
            old.client.publish(f"homeassistant/{legacy}/config", "{}", retain=True)
        old.client.publish("homeassistant/button/t_ha_shed/train_start/config", "{}", 1, True)
    client = make_client(root, homeassistant_discovery=True, commands=["sample"])
    client.start()
    assert client.wait_connected(10)
    wait_until(
        lambda: (
            f"homeassistant/button/{node}/sample_slot_0/config" in _retained_configs(broker, root)
        ),
        10,
        "the slot buttons",
    )
    configs = _retained_configs(broker, root)
    assert f"homeassistant/button/{node}/sample_class_0/config" not in configs
    assert f"homeassistant/button/{node}/train_start/config" not in configs
    # "train" is switched off: no training switch.
    assert f"homeassistant/switch/{node}/training/config" not in configs
    # Slot 1 renamed, slot 0 removed, a class added in slot 2: one status is enough.
    report = status(0)
    client.status(
        StatusReport(
            report.state, ("mug", "lamp"), {"mug": 0, "lamp": 0}, report.bundle,
            report.version, report.camera, capacity=4, class_slots={1: "mug", 2: "lamp"},
        )
    )  # fmt: skip
    wait_until(
        lambda: (
            f"homeassistant/button/{node}/sample_slot_2/config" in _retained_configs(broker, root)
        ),
        10,
        "the new class's button",
    )
    configs = _retained_configs(broker, root)
    assert json.loads(configs[f"homeassistant/button/{node}/sample_slot_1/config"][
        "payload_press"]) == {"class": "mug"}  # fmt: skip
    assert f"homeassistant/button/{node}/sample_slot_0/config" not in configs
    options = configs[f"homeassistant/sensor/{node}/predicted_class/config"]["options"]
    assert options == ["mug", "lamp", "unknown"]


def test_callbacks_survive_concurrent_publishing(broker, make_client):
    client = make_client("t/threads")
    client.start()
    assert client.wait_connected(10)

    def spam(n: int) -> None:
        for i in range(200):
            client.status(status(i))
            client.prediction(PredictionEvent("cup", 0.9, {"cup": 0.9}, time.time(), i))

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.status(status(999))
    assert client.connected
    with MqttWatch(broker.host, broker.port, "t/threads") as watch:
        # The newest status always arrives, even when it met a full outgoing queue.
        watch.wait_for("status", lambda m: m.json()["samples"]["cup"] == 999, timeout=20)
        time.sleep(0.5)
        assert watch.received("status")[-1].json()["samples"]["cup"] == 999


def _view(name: str) -> np.ndarray:
    view = np.asarray(Image.fromarray(photos.photo(name)).resize((224, 224)))
    view.setflags(write=False)
    return view


def _jpeg_size(payload: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(payload), formats=["JPEG"]) as image:
        return image.size


def test_a_class_change_is_an_event_and_a_retained_picture_as_is_a_sample(broker, make_client):
    client = make_client("t/pictures")
    client.start()
    assert client.wait_connected(10)
    with MqttWatch(broker.host, broker.port, "t/pictures") as watch:
        scores = {"cup": 0.9, "pen": 0.1}
        client.prediction(
            PredictionEvent("cup", 0.9, scores, 1.0, 1, changed=True, view=_view("cat"))
        )
        client.prediction(PredictionEvent("cup", 0.8, scores, 2.0, 2))  # no change: no event
        client.sample(SampleEvent("pen", 1, "mqtt", 3.0, view=_view("rocket")))
        change = watch.wait_for("class_change").json()
        assert (change["class"], change["previous"], change["frame"]) == ("cup", None, 1)
        assert _jpeg_size(watch.wait_for("picture/class_change").payload) == (224, 224)
        assert _jpeg_size(watch.wait_for("picture/sample").payload) == (224, 224)
        assert watch.wait_for("prediction", lambda m: m.json()["frame"] == 2)
        assert len(watch.received("class_change")) == 1
    with MqttWatch(broker.host, broker.port, "t/pictures") as late:  # retained for newcomers
        assert late.wait_for("picture/class_change").retain
        assert late.wait_for("picture/sample").retain
        time.sleep(0.3)
        assert late.received("class_change") == []  # an event, not a state


def test_with_pictures_off_none_is_published_and_old_ones_are_cleared(broker, make_client):
    with MqttWatch(broker.host, broker.port, "t/nopic") as old:
        old.client.publish("t/nopic/picture/sample", b"\xff\xd8old", 1, True).wait_for_publish(5)
    client = make_client("t/nopic", pictures=False)
    with MqttWatch(broker.host, broker.port, "t/nopic") as watch:
        client.start()
        assert client.wait_connected(10)
        view = _view("cat")
        client.prediction(
            PredictionEvent("cup", 0.9, {"cup": 0.9}, 1.0, 1, changed=True, view=view)
        )
        client.sample(SampleEvent("pen", 1, "mqtt", 3.0, view=view))
        watch.wait_for("class_change")
        watch.wait_for("sample")
        pictures = [m.payload for m in watch.messages if "/picture/" in m.topic and not m.retain]
        assert set(pictures) == {b""}  # only the clearing of what an earlier run left
    with MqttWatch(broker.host, broker.port, "t/nopic") as late:
        time.sleep(0.5)  # a retained picture would have arrived by now
        assert [m for m in late.messages if "/picture/" in m.topic] == []


def _discovery_since(watch: MqttWatch, mark: int, node: str) -> list[tuple[str, bytes]]:
    return [
        (m.topic, m.payload)
        for m in watch.messages[mark:]
        if m.topic.startswith("homeassistant/") and f"/{node}/" in m.topic and not m.retain
    ]


def test_switching_the_discovery_form_clears_the_old_form_before_announcing_the_new(
    broker, make_client
):
    root, node = "t/ha/switch", "t_ha_switch"
    device_topic = f"homeassistant/device/{node}/config"
    with MqttWatch(broker.host, broker.port, root, ("homeassistant/#",)) as watch:
        entity_form = make_client(root, homeassistant_discovery=True)
        entity_form.start()
        assert entity_form.wait_connected(10)
        button = f"homeassistant/button/{node}/sample_slot_1/config"
        watch.wait_for(button, exact_topic=True)
        time.sleep(0.3)
        entities = {t for t, p in _discovery_since(watch, 0, node) if p}
        entity_form.stop()

        mark = watch.mark()
        device_form = make_client(root, homeassistant_discovery=True, discovery="device")
        device_form.start()
        announced = watch.wait_for(device_topic, lambda m: bool(m.payload), 10, mark, True)
        time.sleep(0.3)
        seen = _discovery_since(watch, mark, node)
        first = seen.index((device_topic, announced.payload))
        assert {t for t, p in seen[:first] if not p} == entities  # all cleared, and before
        assert not [t for t, p in seen if p and t != device_topic]
        parts = announced.json()["components"]
        assert {f"homeassistant/{c['platform']}/{node}/{k}/config" for k, c in parts.items()} == (
            entities
        )
        device_form.stop()

        mark = watch.mark()
        back = make_client(root, homeassistant_discovery=True)
        back.start()
        watch.wait_for(button, lambda m: bool(m.payload), 10, mark, True)
        time.sleep(0.3)
        seen = _discovery_since(watch, mark, node)
        assert seen[0] == (device_topic, b"")  # cleared before any entity is announced
        assert {t for t, p in seen[1:] if p} == entities


def test_other_parts_receive_their_subscriptions_and_can_ask_for_retained_messages_again(
    broker, make_client
):
    received: list[tuple[str, bytes]] = []
    connects: list[int] = []
    client = make_client("t/parts")
    client.subscribe("g/+/s/+", lambda topic, payload: received.append((topic, payload)))
    client.add_connect_listener(lambda: connects.append(1))
    client.start()
    assert client.wait_connected(10)
    wait_until(lambda: connects, 5, "the connect listener")
    for i in range(3):
        info = client.publish_retained(f"g/x/s/{i}", f"m{i}".encode())
        assert info is not None
        info.wait_for_publish(5)
    wait_until(lambda: len(received) == 3, 5, "the three records, live")
    client.fetch_retained(["g/x/s/1", "g/x/s/2"])
    wait_until(lambda: len(received) == 5, 5, "two retained records again")
    assert sorted(received[3:]) == [("g/x/s/1", b"m1"), ("g/x/s/2", b"m2")]
    client.publish_retained("g/x/s/1", b"").wait_for_publish(5)  # cleared
    wait_until(lambda: len(received) == 6, 5, "the clearing message")
    with MqttWatch(broker.host, broker.port, "g") as late:
        wait_until(lambda: len(late.messages) == 2, 5, "the two records still retained")
    assert received[-1] == ("g/x/s/1", b"")
