"""The config file: parsed once, every problem reported with key, value and what is allowed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from pydantic import SecretStr

from personalizer.config import ConfigError, load_config, parse_config
from tests.support.daemon_process import write_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "personalizer.toml"


def minimal(bundle: Path, tmp_path: Path, **extra: dict) -> dict:
    sections = {"model": {"bundle": str(bundle)}, "state": {"dir": str(tmp_path / "state")}}
    for name, table in extra.items():
        sections.setdefault(name, {}).update(table)
    return sections


def problems(document: dict, tmp_path: Path, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, tmp_path / "personalizer.toml", environ or {})
    return [str(p) for p in caught.value.problems]


def test_minimal_config_gets_documented_defaults(bundle, tmp_path):
    config = parse_config(minimal(bundle, tmp_path), tmp_path / "p.toml", {})
    assert config.model.classes == ("A", "B", "C", "D")
    assert config.model.runtime == "auto" and config.model.num_threads is None
    assert config.camera.source == "auto" and config.camera.fps == 10.0
    assert config.inference.agree_frames == 3 and config.inference.min_confidence == 0.6
    assert config.training.auto_start is False and config.training.epochs_per_cycle == 0
    assert config.mqtt.port == 1883 and config.mqtt.qos == 1
    assert re.fullmatch(r"personalizer/[A-Za-z0-9_.-]+", config.mqtt.topic_prefix)
    assert config.mqtt.max_payload_bytes == 2 * 1024 * 1024
    assert config.gpio.enabled is False


def test_shipped_config_documents_every_key_and_parses(bundle, tmp_path):
    text = SHIPPED.read_text()
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            above = lines[number - 1]
            assert above.startswith("#") or re.match(r"^[a-z_]+ = ", above), (
                f"key on line {number + 1} has no comment: {line}"
            )
    document = tomllib.loads(text)
    document["model"]["bundle"] = str(bundle)
    document["state"]["dir"] = str(tmp_path / "state")
    config = parse_config(document, SHIPPED, {})
    # The shipped file lists every key the parser knows, set or as a commented-out example
    # (keys that only apply to some setups, like [model] device or GPIO pins): nothing is
    # undocumented.
    commented: dict[str, set[str]] = {}
    current = ""
    for line in lines:
        header = re.match(r"^\[([a-z]+)\]$", line)
        current = header.group(1) if header else current
        example = re.match(r"^# (?:\[\[[a-z]+\.)?([a-z_]+)(?: = |\]\])", line)
        if example:
            commented.setdefault(current, set()).add(example.group(1))
    for section in ("model", "camera", "inference", "training", "mqtt", "state", "gpio", "web"):
        known = set(vars(getattr(config, section)))
        known -= {"password", "password_source"}
        written = set(document[section])
        written |= commented.get(section, set())
        assert known <= written | {"bundle"}, f"[{section}] misses {known - written}"


def test_every_problem_is_reported_at_once_with_key_value_and_allowed(bundle, tmp_path):
    document = minimal(
        bundle,
        tmp_path,
        camera={"source": "webcam", "fsp": 3},
        mqtt={"port": 70000, "qos": "1"},
        inference={"agree_frames": 0},
    )
    document["extra"] = {"x": 1}
    found = problems(document, tmp_path)
    assert any(p.startswith('camera.source = "webcam": must be one of "auto"') for p in found)
    assert any('camera.fsp = 3: unknown key (did you mean "fps"?)' in p for p in found)
    assert any(
        p.startswith("mqtt.port = 70000: must be a whole number from 1 to 65535") for p in found
    )
    assert any(p.startswith('mqtt.qos = "1": must be a whole number') for p in found)
    assert any(p.startswith("inference.agree_frames = 0") for p in found)
    assert any(p.startswith("extra = {table}: unknown section") for p in found)
    assert len(found) == 6


def test_class_names_must_fit_the_bundles_class_slots(bundle, tmp_path):
    document = minimal(bundle, tmp_path, model={"classes": ["a", "b"]})
    fewer = parse_config(document, tmp_path / "p.toml", {})
    assert fewer.model.classes == ("a", "b")
    found = problems(
        minimal(bundle, tmp_path, model={"classes": ["a", "b", "c", "d", "e"]}), tmp_path
    )
    assert found == [
        'model.classes = ["a", "b", "c", "d", "e"]: the bundle has room for 4 classes (its '
        "--num_classes); list at most 4 names or convert a bundle with a larger --num_classes"
    ]
    found = problems(minimal(bundle, tmp_path, model={"classes": ["a", "a", "b"]}), tmp_path)
    assert any("class names must be unique" in p for p in found)


def test_missing_bundle_and_replay_without_path_are_named(tmp_path):
    document = {"model": {"bundle": "nowhere"}, "camera": {"source": "replay"}}
    found = problems(document, tmp_path)
    assert any(p.startswith(f'model.bundle = "{tmp_path}/nowhere": no such file') for p in found)
    assert any(p.startswith("camera.path: missing; ") for p in found)


def test_relative_paths_are_relative_to_the_config_file(bundle, tmp_path):
    bundle = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    (tmp_path / "frames").mkdir()
    config_file = write_config(
        tmp_path / "p.toml",
        {
            "model": {"bundle": bundle.name},
            "camera": {"source": "replay", "path": "frames"},
            "state": {"dir": "state"},
        },
    )
    config = load_config(config_file, environ={})
    assert config.model.bundle == bundle
    assert config.camera.path == tmp_path / "frames"
    assert config.state.dir == tmp_path / "state"


def test_password_comes_from_file_and_never_shows(bundle, tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("hunter2\n")
    document = minimal(bundle, tmp_path, mqtt={"username": "u", "password_file": str(secret_file)})
    config = parse_config(document, tmp_path / "p.toml", {})
    assert isinstance(config.mqtt.password, SecretStr)
    assert config.mqtt.password.get_secret_value() == "hunter2"
    for text in (repr(config), str(config), repr(config.mqtt), config.summary()):
        assert "hunter2" not in text


def test_password_comes_from_a_systemd_credential(bundle, tmp_path):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "mqtt_password").write_text("s3cret")
    document = minimal(bundle, tmp_path, mqtt={"username": "u"})
    config = parse_config(
        document, tmp_path / "p.toml", {"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert config.mqtt.password_source == "systemd credential mqtt_password"


def test_unreadable_password_file_and_half_a_client_certificate_are_errors(bundle, tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("not really")
    document = minimal(
        bundle,
        tmp_path,
        mqtt={"username": "u", "password_file": "/no/such/pw", "cert": str(cert)},
    )
    found = problems(document, tmp_path)
    assert any(p.startswith('mqtt.password_file = "/no/such/pw": cannot be read') for p in found)
    assert any(p.startswith("mqtt.key: missing; client certificates need both") for p in found)


@pytest.mark.parametrize("prefix", ["a/+/b", "a/#", "/lead", "trail/", "a//b", "$SYS/x"])
def test_topic_prefix_with_wildcards_or_empty_levels_is_refused(bundle, tmp_path, prefix):
    found = problems(minimal(bundle, tmp_path, mqtt={"topic_prefix": prefix}), tmp_path)
    assert len(found) == 1 and found[0].startswith("mqtt.topic_prefix = ")


def test_gpio_enabled_without_any_button_or_led_is_an_error(bundle, tmp_path):
    found = problems(minimal(bundle, tmp_path, gpio={"enabled": True}), tmp_path)
    assert found == [
        "gpio.enabled = true: no button or LED is configured: add [[gpio.class_buttons]] or "
        "set enabled = false"
    ]


def test_not_toml_is_an_error_with_the_position(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nbundle = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "is not valid TOML" in str(caught.value) and "line 1" in str(caught.value)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalizer", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_prints_one_line_and_exits_0(bundle, tmp_path):
    config_file = write_config(tmp_path / "p.toml", minimal(bundle, tmp_path))
    done = run_cli("check-config", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config OK: bundle ") and done.stdout.count("\n") == 1


def test_check_config_says_which_configured_classes_the_board_no_longer_has(bundle, tmp_path):
    from personalizer.store import StateDatabase

    document = minimal(bundle, tmp_path, model={"classes": ["cup", "pen", "mug"]})
    (tmp_path / "state").mkdir()
    board = StateDatabase(tmp_path / "state" / "state.db")
    board.classes.replace({0: "cup", 1: "pencil"})  # pen renamed, mug removed on the board
    board.close()
    done = run_cli("check-config", "--config", str(write_config(tmp_path / "p.toml", document)))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "the board's classes (they win over the config): cup, pencil"
    assert "'pen', 'mug'" in lines[2] and "no longer has" in lines[2]


def test_check_config_exits_78_naming_every_bad_key(bundle, tmp_path):
    document = minimal(bundle, tmp_path, mqtt={"keepalive": 1, "hots": "x"})
    config_file = write_config(tmp_path / "p.toml", document)
    done = run_cli("check-config", "--config", str(config_file))
    assert done.returncode == 78
    assert "mqtt.keepalive = 1: must be a whole number from 5 to 3600" in done.stderr
    assert 'mqtt.hots = "x": unknown key (did you mean "host"?)' in done.stderr


def test_run_with_a_bad_config_exits_78_before_touching_anything(tmp_path):
    config_file = write_config(
        tmp_path / "p.toml",
        {"model": {"bundle": str(tmp_path / "none")}, "state": {"dir": str(tmp_path / "st")}},
    )
    done = run_cli("run", "--config", str(config_file))
    assert done.returncode == 78
    assert "model.bundle" in done.stderr
    assert not (tmp_path / "st").exists()


def test_version_and_help():
    assert run_cli("--version").stdout.strip() == "personalizer 1.0.0"
    helped = run_cli("--help").stdout
    assert "check-config" in helped and "cmd/<name>" in helped


def test_a_tensor_bundle_is_refused_by_the_daemon_with_exit_78(tmp_path):
    from tests.support.bundles import BundleSpec, build_bundle

    sound = build_bundle(
        BundleSpec(base="spectral", window=128, num_classes=3, class_names=("a", "b", "c"),
                   learning_rate=0.01, train_batch_size=8)
    )  # fmt: skip
    config_file = write_config(tmp_path / "p.toml", minimal(sound, tmp_path))
    for command in ("check-config", "run"):
        done = run_cli(command, "--config", str(config_file))
        assert done.returncode == 78, (command, done.stderr)
        assert "takes a [1, 128] tensor, not camera images" in done.stderr
        assert "TransferLearningModel" in done.stderr and "Traceback" not in done.stderr
