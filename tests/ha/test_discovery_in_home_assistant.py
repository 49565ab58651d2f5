"""The discovery configs, checked by Home Assistant itself (2024.1, in its own venv).

`make test-ha` builds `.venvs/ha` (homeassistant 2024.1.x, the last release for Python 3.11) and
runs this with ``HA_PYTHON`` pointing at it. Every config the daemon announces goes through
Home Assistant's discovery topic pattern, the MQTT platform's discovery schema and its template
engine, rendered against real payloads of the daemon (tests/support/ha_discovery_check.py).

This is the entity form of discovery (`[mqtt] discovery = "entity"`, the default): 2024.1 has no
device-based discovery (added in 2024.11), which the last test here shows. The device form is
checked by the live Home Assistant 2026.11 (test_live_home_assistant.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from personalizer.events import (
    CameraStatus,
    MetricsReport,
    PredictionEvent,
    StatusReport,
)
from personalizer.mqtt.discovery import DiscoveryDevice, device_message, discovery_messages
from personalizer.mqtt.payloads import (
    class_change_payload,
    metrics_payload,
    prediction_payload,
    status_payload,
)
from personalizer.mqtt.topics import Topics

CHECK = Path(__file__).resolve().parents[1] / "support" / "ha_discovery_check.py"
TOPICS = Topics("personalizer/kitchen")
CLASSES = {0: "cat", 1: "coffee", 3: "rocket"}
# Keys that Home Assistant 2024.1's schema does not know yet and drops (newer releases use them).
DROPPED_BY_2024_1 = {"options"}
CYCLE = "training finished: the loss stopped improving (9 epochs, loss 0.1234)"


def ha_python() -> str:
    python = os.environ.get("HA_PYTHON")
    if not python:
        pytest.skip(
            "HA_PYTHON is not set: run `make test-ha`, which builds the Home Assistant venv"
        )
    return python


def states(loss: float | None, accuracy: float | None, known: bool, camera_ok: bool) -> dict:
    status = StatusReport(
        "training",
        tuple(CLASSES.values()),
        {"cat": 4, "coffee": 2, "rocket": 0},
        "0123456789abcdef",
        "1.0.0",
        CameraStatus("replay /photos", camera_ok, None if camera_ok else "unplugged"),
        ("state.db was set aside",),
        capacity=8,
        last_loss=loss,
        class_slots=CLASSES,
        needs_training=loss is None,
        last_cycle=None if loss is None else {"reason": "plateau", "text": CYCLE, "epochs": 9},
    )
    prediction = PredictionEvent(
        "cat" if known else "unknown", 0.93, {"cat": 0.93, "coffee": 0.07}, time.time(), 12, known
    )
    change = PredictionEvent(
        prediction.class_name, 0.93 if known else 0.0, prediction.scores, prediction.ts, 12,
        known, changed=True, previous="coffee" if known else None,
    )  # fmt: skip
    metrics = MetricsReport(
        accuracy,
        {"cat": 1.0, "coffee": 0.5, "rocket": None},
        {"cat": {"cat": 4}, "coffee": {"coffee": 1, "unknown": 1}},
        0.1,
        6,
        "leave-one-out",
        0.02,
        time.time(),
    )
    return {
        TOPICS.status: status_payload(status).decode(),
        TOPICS.prediction: prediction_payload(prediction).decode(),
        TOPICS.metrics: metrics_payload(metrics).decode(),
        TOPICS.class_change: class_change_payload(change).decode(),
    }


def check(device: DiscoveryDevice, example: dict) -> tuple[str, list[dict]]:
    return check_messages(discovery_messages(device), example)


def check_messages(messages: list, example: dict) -> tuple[str, list[dict]]:
    request = {
        "configs": [{"topic": m.topic, "payload": m.payload.decode()} for m in messages],
        "states": example,
    }
    done = subprocess.run(
        [ha_python(), str(CHECK)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    return answer["version"], answer["results"]


def device(commands: tuple[str, ...]) -> DiscoveryDevice:
    return DiscoveryDevice(
        prefix="homeassistant",
        topics=TOPICS,
        classes=CLASSES,
        commands=commands,
        version="1.0.0",
        qos=1,
        configuration_url="http://kitchen.local:8080/",
    )


@pytest.mark.parametrize(
    ("loss", "accuracy", "known", "camera_ok"),
    [(0.1234, 0.875, True, True), (None, None, False, False)],
    ids=["trained", "fresh-unknown-camera-down"],
)
def test_every_config_is_accepted_and_every_template_renders(loss, accuracy, known, camera_ok):
    announced = device(("sample", "train", "classify"))
    version, results = check(announced, states(loss, accuracy, known, camera_ok))
    # One answer per config, whatever the daemon announces (a new entity is checked as well).
    assert [r["topic"] for r in results] == [m.topic for m in discovery_messages(announced)]
    for result in results:
        assert result["errors"] == [], (version, result)
        allowed = DROPPED_BY_2024_1 if version.startswith("2024.1.") else set()
        assert set(result["dropped"]) <= allowed, (version, result)
    rendered = {r["topic"].split("/")[-2]: r["rendered"] for r in results}
    assert rendered["predicted_class"]["value_template"] == ("cat" if known else "unknown")
    assert rendered["camera"]["value_template"] == ("OFF" if camera_ok else "ON")
    assert rendered["training"]["value_template"] == "training"
    assert rendered["samples"]["value_template"] == "6"
    assert json.loads(rendered["samples"]["json_attributes_template"])["cat"] == 4
    assert rendered["loss"]["value_template"] == ("0.1234" if loss else "None")
    assert json.loads(rendered["loss"]["json_attributes_template"]) == {
        "needs_training": loss is None,
        "last_cycle": CYCLE if loss else None,
    }
    assert rendered["accuracy"]["value_template"] == ("87.5" if accuracy else "None")
    event = json.loads(rendered["class_change"]["value_template"])
    assert event == (
        {"event_type": "cat", "confidence": 93.0, "previous": "coffee"}
        if known
        else {"event_type": "unknown", "confidence": 0.0, "previous": None}
    )
    pictures = [r for r in results if r["topic"].split("/")[1] == "image"]
    assert len(pictures) == 2 and all(r["dropped"] == [] for r in pictures)


def test_a_read_only_daemon_announces_no_button_and_no_switch():
    _, results = check(device(()), states(0.5, 0.5, True, True))
    components = {r["topic"].split("/")[1] for r in results}
    assert components == {"sensor", "binary_sensor", "event", "image"}
    assert all(r["errors"] == [] for r in results)


def test_home_assistant_2024_1_cannot_take_device_based_discovery():
    # Why the entity form is the default: a Home Assistant older than 2024.11 ignores this.
    message = device_message(device(("sample", "train")))
    version, (result,) = check_messages([message], states(0.5, 0.5, True, True))
    if not version.startswith("2024.1."):
        pytest.skip(f"HA_PYTHON has Home Assistant {version}, not 2024.1")
    assert result["errors"] == ["component device not supported"]
