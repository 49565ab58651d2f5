"""GPIO buttons and LEDs on gpiozero's MockFactory, against the running service and real broker."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from personalizer.config import ConfigError, PinAssignment, load_config
from personalizer.service import Service, SetupError, build_service
from tests.support import photos
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import write_config
from tests.support.mqtt_watch import MqttWatch
from tests.support.photos import photo_b64

BUTTONS = {"cat": 17, "coffee": 27, "rocket": 22, "astronaut": 10}
LEDS = {"cat": 5, "coffee": 6, "rocket": 13, "astronaut": 19}
TRAIN, RESET, STATUS = 23, 24, 12
HOLD = 0.6


def gpio_section() -> dict:
    return {
        "enabled": True,
        "pin_factory": "mock",
        "train_button": TRAIN,
        "reset_button": RESET,
        "status_led": STATUS,
        "bounce_time": 0.2,
        "hold_time": HOLD,
        "class_buttons": [{"class": c, "pin": p} for c, p in BUTTONS.items()],
        "class_leds": [{"class": c, "pin": p} for c, p in LEDS.items()],
    }


def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Board:
    """The running service with its mock pins and a watcher of its topics."""

    def __init__(self, service: Service, factory: MockFactory, watch: MqttWatch) -> None:
        self.service, self.factory, self.watch = service, factory, watch

    def press(self, pin: int, seconds: float = 0.05) -> None:
        mock = self.factory.pin(pin)
        mock.drive_low()  # pulled up: pressed means connected to GND
        time.sleep(seconds)
        mock.drive_high()

    def lit(self) -> list[str]:
        return [c for c, p in LEDS.items() if self.factory.pin(p).state]


@pytest.fixture
def board(tmp_path: Path, broker, bundle, request) -> Iterator[Board]:
    frames = getattr(request, "param", None)
    folder = photos.replay_folder(tmp_path / "frames", frames or list(CLASSES))
    sections = base_sections(tmp_path, broker, bundle, folder, "pz/gpio")
    sections["gpio"] = gpio_section()
    sections["training"]["until_stopped"] = True  # the train button, not the plateau, stops it
    config = load_config(write_config(tmp_path / "gpio.toml", sections))
    factory = MockFactory(pin_class=MockPWMPin)
    service = build_service(config, gpio_factory=factory)
    with MqttWatch(broker.host, broker.port, "pz/gpio") as watch:
        service.start()
        try:
            watch.wait_for("availability", lambda m: m.text == "online")
            watch.wait_for("prediction")  # frames flow: a button press has a frame to take
            yield Board(service, factory, watch)
        finally:
            service.shutdown()


def test_class_button_takes_a_sample_like_the_mqtt_command(board):
    mark = board.watch.mark()
    board.press(BUTTONS["coffee"])
    event = board.watch.wait_for("sample", since=mark).json()
    assert (event["class"], event["count"], event["source"]) == ("coffee", 1, "button")
    result = board.watch.wait_for("cmd/sample/result", since=mark).json()
    assert result["ok"] and result["source"] == "button"
    assert board.service.store.path.exists()
    assert board.service.model.samples()["coffee"] == 1


def test_bouncing_contacts_give_one_sample(board):
    mark = board.watch.mark()
    pin = board.factory.pin(BUTTONS["cat"])
    for _ in range(6):  # a bouncing contact: edges 10 ms apart, within bounce_time
        pin.drive_low()
        time.sleep(0.01)
        pin.drive_high()
        time.sleep(0.01)
    board.watch.wait_for("sample", since=mark)
    time.sleep(0.5)
    assert len(board.watch.received("sample", since=mark)) == 1
    assert board.service.model.samples()["cat"] == 1


def test_train_button_toggles_training_and_the_status_led_pulses(board):
    for name in CLASSES:
        assert board.watch.command("sample", {"class": name, "image": photo_b64(name)})["ok"]
    status_led = board.service.gpio.lights.status_led
    mark = board.watch.mark()
    board.press(TRAIN)
    board.watch.wait_for("status", lambda m: m.json()["state"] == "training", since=mark)
    board.watch.wait_for("loss", since=mark)
    until(lambda: board.service.gpio.lights.status_pattern == "training", what="pulse")
    values = set()
    for _ in range(40):  # pulsing: the PWM value moves
        values.add(round(status_led.value, 2))
        time.sleep(0.05)
    assert len(values) > 3
    time.sleep(0.3)  # past bounce_time
    mark = board.watch.mark()
    board.press(TRAIN)
    board.watch.wait_for("status", lambda m: m.json()["state"] == "idle", since=mark)
    until(lambda: board.service.gpio.lights.status_pattern == "idle", what="idle LED")
    until(lambda: status_led.value == 0, what="status LED off")


def test_reset_short_press_is_harmless_and_hold_clears_everything(board):
    for name in ("cat", "rocket"):
        assert board.watch.command("sample", {"class": name, "image": photo_b64(name)})["ok"]
    mark = board.watch.mark()
    board.press(RESET, 0.1)
    time.sleep(HOLD + 0.5)
    assert board.watch.received("cmd/reset/result", since=mark) == []
    assert sum(board.service.model.samples().values()) == 2
    status_pin = board.factory.pin(STATUS)
    status_pin.clear_states()
    board.press(RESET, HOLD + 0.4)
    result = board.watch.wait_for("cmd/reset/result", since=mark).json()
    assert result["ok"] and result["source"] == "button"
    board.watch.wait_for("status", lambda m: sum(m.json()["samples"].values()) == 0, since=mark)
    assert sum(board.service.model.samples().values()) == 0
    until(lambda: sum(1 for s in status_pin.states if s.state > 0) >= 3, what="3 flashes")


@pytest.mark.parametrize("board", [["rocket"]], indirect=True)
def test_class_leds_follow_the_prediction(board):
    for name in CLASSES:
        for index in range(2):
            image = photo_b64(name, index)
            assert board.watch.command("sample", {"class": name, "image": image})["ok"]
    mark = board.watch.mark()
    board.watch.command("train", {"action": "start"})
    board.watch.wait_for("loss", lambda m: m.json()["loss"] < 0.1, timeout=120, since=mark)
    board.watch.command("train", {"action": "stop"})
    mark = board.watch.mark()
    board.watch.wait_for("prediction", lambda m: m.json()["class"] == "rocket", since=mark)
    until(lambda: board.lit() == ["rocket"], what="only the rocket LED lit")


def test_a_class_button_for_an_unknown_class_is_a_clear_error(tmp_path, broker, bundle):
    folder = photos.replay_folder(tmp_path / "frames", list(CLASSES))
    sections = base_sections(tmp_path, broker, bundle, folder, "pz/gpio-bad")
    sections["model"]["classes"] = []  # the classes then come from the bundle's manifest
    sections["gpio"] = {**gpio_section(), "class_leds": [], "class_buttons": [
        {"class": "teapot", "pin": 17}]}  # fmt: skip
    with pytest.raises(ConfigError, match='gpio.class_buttons = "teapot": is not one of'):
        load_config(write_config(tmp_path / "bad.toml", sections))
    # The service checks again against the loaded model (a config built by other means).
    sections = base_sections(tmp_path, broker, bundle, folder, "pz/gpio-bad")
    sections["gpio"] = gpio_section()
    good = load_config(write_config(tmp_path / "good.toml", sections))
    teapot = PinAssignment.model_validate({"class": "teapot", "pin": 17})
    config = good.model_copy(
        update={"gpio": good.gpio.model_copy(update={"class_buttons": (teapot,)})}
    )
    with pytest.raises(SetupError, match="'teapot' is not one of the model's classes"):
        build_service(config, gpio_factory=MockFactory(pin_class=MockPWMPin))


def test_gpio_config_errors_name_the_key(tmp_path, bundle):
    sections = {
        "model": {"bundle": str(bundle), "classes": ["a", "b", "x", "y"]},
        "gpio": {
            "enabled": True,
            "pin_factory": "wiringpi",
            "train_button": 99,
            "reset_button": "GPIO17",
            "hold_time": "long",
            "class_buttons": [{"class": "a", "pin": 17}, {"class": "c", "pin": 5, "colour": 1}],
        },
    }
    config = write_config(tmp_path / "bad.toml", sections)
    done = subprocess.run(
        [sys.executable, "-m", "personalizer", "check-config", "--config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 78
    for expected in ("gpio.pin_factory", "gpio.train_button = 99", "gpio.hold_time",
                     "gpio.class_buttons[1].colour", "pin GPIO17 is assigned twice",
                     "gpio.class_buttons = \"c\""):  # fmt: skip
        assert expected in done.stderr, (expected, done.stderr)


def test_an_unopenable_pin_names_the_pin_and_the_fix(tmp_path, broker, bundle):
    folder = photos.replay_folder(tmp_path / "frames", list(CLASSES))
    sections = base_sections(tmp_path, broker, bundle, folder, "pz/gpio-pin")
    sections["gpio"] = {**gpio_section(), "pin_factory": "lgpio"}
    config = load_config(write_config(tmp_path / "pin.toml", sections))
    with pytest.raises(SetupError) as raised:
        build_service(config)
    message = str(raised.value)
    assert "lgpio" in message and "group gpio" in message and "pin_factory" in message
    assert "Traceback" not in message


def test_simulate_keys_press_the_buttons(tmp_path, broker, bundle):
    folder = photos.replay_folder(tmp_path / "frames", list(CLASSES))
    sections = base_sections(tmp_path, broker, bundle, folder, "pz/sim")
    config = write_config(tmp_path / "sim.toml", sections)  # no [gpio]: all on mock pins
    log_file = (tmp_path / "sim.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "personalizer", "run", "--simulate", "--config", str(config)],
        stdin=subprocess.PIPE, stderr=log_file, text=True,
    )  # fmt: skip
    try:
        with MqttWatch(broker.host, broker.port, "pz/sim") as watch:
            watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
            watch.wait_for("prediction")  # the camera delivers frames: a sample can be taken
            mark = watch.mark()
            process.stdin.write("3\n")  # the third class: rocket
            process.stdin.flush()
            event = watch.wait_for("sample", since=mark).json()
            assert (event["class"], event["source"]) == ("rocket", "button")
            process.stdin.write("q\n")
            process.stdin.flush()
            assert process.wait(timeout=15) == 0
        log = (tmp_path / "sim.log").read_text()
        assert "keys: 1=cat, 2=coffee, 3=rocket, 4=astronaut" in log
        assert "LEDs:" in log
    finally:
        if process.poll() is None:
            process.kill()
        log_file.close()
