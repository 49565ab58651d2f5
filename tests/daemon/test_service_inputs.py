"""In-process service: local inputs (buttons) and the supervisor hooks use the same paths."""

from __future__ import annotations

import time

from personalizer.commands import Command
from personalizer.config import load_config
from personalizer.service import build_service
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import write_config
from tests.support.fakes import RecordingNotifier
from tests.support.mqtt_watch import MqttWatch


def test_a_button_press_takes_the_sample_path_and_the_supervisor_hears_the_lifecycle(
    tmp_path, broker, bundle, photo_frames
):
    sections = base_sections(tmp_path, broker, bundle, photo_frames, "pz/inproc")
    config = load_config(write_config(tmp_path / "inproc.toml", sections))
    notifier = RecordingNotifier()
    service = build_service(config, notifier=notifier)
    model, store = service.model, service.store
    with MqttWatch(broker.host, broker.port, "pz/inproc") as watch:
        service.start()
        try:
            watch.wait_for("availability", lambda m: m.text == "online")
            watch.wait_for("prediction")  # frames flow before the "button" is pressed
            results = []
            assert service.submit(
                Command.local("sample", {"class": "rocket"}, "button"), results.append
            )
            event = watch.wait_for("sample").json()
            assert event["source"] == "button" and event["class"] == "rocket"
            deadline = time.monotonic() + 5  # the reply follows the event
            while not results and time.monotonic() < deadline:
                time.sleep(0.02)
            assert results[0]["ok"] and results[0]["count"] == 1
            assert store.path.exists()
            assert service.submit(
                Command.local("train", {"action": "start"}, "button"), results.append
            )
            watch.wait_for("loss")
            assert watch.received("cmd/sample/result") == []  # local inputs answer locally
        finally:
            service.shutdown()
    deadline = time.monotonic() + 5
    while "stopping" not in notifier.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert notifier.calls.count("ready") == 1 and notifier.calls.count("stopping") == 1
    assert "watchdog" in notifier.calls and notifier.calls[-1] == "stopping"
    assert watch.received("availability")[-1].text == "offline"
    assert dict(model.samples()) == {**dict.fromkeys(CLASSES, 0), "rocket": 1}
