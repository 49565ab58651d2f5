"""Bad configuration files: every section with wrong types, out-of-range values, unknown keys.

`personalizer check-config` and `personalizer run` both exit 78 (EX_CONFIG) and name every bad
key (as `section.key`) before touching any hardware, broker or bundle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_process import write_config

EX_CONFIG = 78

# section -> {key: bad value}; each section's file holds all of its bad keys at once.
BAD_KEYS: dict[str, dict[str, Any]] = {
    "model": {
        "classes": "cat",  # wrong type
        "num_threads": 65,  # out of range
        "runtime": "tensorflow-gpu",  # not a choice
        "delegate": 3,  # wrong type
        "bundel": "x",  # unknown key
    },
    "camera": {
        "width": "640",
        "height": 9000,
        "fps": 0,
        "source": "webcam",
        "device": True,
        "fsp": 3,
    },
    "inference": {
        "rate": "fast",
        "min_confidence": 1.5,
        "agree_frames": 0,
        "publish_interval": -1.0,
        "threshold": 0.5,
    },
    "training": {
        "epochs_per_cycle": -1,
        "min_epoch_interval": "0.2",
        "autosave_interval": 0.5,
        "auto_start": "yes",
        "imprint": 1,
        "epochs": 3,
    },
    "mqtt": {
        "host": "",
        "port": 70000,
        "topic_prefix": "home/#",
        "username": 5,
        "tls": "yes",
        "qos": 3,
        "keepalive": 1,
        "homeassistant_discovery": "true",
        "max_payload_bytes": 10,
        "max_image_pixels": 1.5,
        "commands": "all",
        "pasword": "secret",
    },
    "state": {"dir": 5, "path": "/tmp"},
    "gpio": {"enabled": "yes", "bogus_key": 1},
}
# Bad values that need a file of their own (one key cannot be wrong twice in one file).
MORE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("mqtt", {"commands": ["sample", "fly"]}),
    ("mqtt", {"commands": [1, 2]}),
    ("mqtt", {"password_file": "no/such/file"}),
    ("camera", {"fps": 1e9}),
    ("model", {"classes": ["a", "a", "b"]}),
]


def _config(tmp_path: Path, name: str, bundle: Path, section: str, table: dict) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "model": {"bundle": str(bundle)},
        "state": {"dir": str(tmp_path / "state")},
        "mqtt": {"host": "127.0.0.1", "port": 1},  # nothing listens: never reached
    }
    sections.setdefault(section, {}).update(table)
    return write_config(tmp_path / f"{name}.toml", sections)


def _personalizer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalizer", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("section", sorted(BAD_KEYS))
def test_every_bad_key_of_a_section_is_named_and_exits_78(
    section: str, tmp_path: Path, bundle: Path
) -> None:
    config = _config(tmp_path, section, bundle, section, BAD_KEYS[section])
    for command in ("check-config", "run"):
        done = _personalizer(command, "--config", str(config))
        assert done.returncode == EX_CONFIG, (command, done.stdout, done.stderr)
        for key in BAD_KEYS[section]:
            assert f"\n  - {section}.{key} " in done.stderr, (command, key, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("section", "table"), MORE_CASES, ids=lambda v: str(v))
def test_more_bad_values_are_named(section: str, table: dict, tmp_path: Path, bundle: Path) -> None:
    config = _config(tmp_path, "case", bundle, section, table)
    done = _personalizer("check-config", "--config", str(config))
    assert done.returncode == EX_CONFIG, done.stdout + done.stderr
    (key,) = table
    assert f"\n  - {section}.{key} " in done.stderr, done.stderr


def test_unknown_section_and_broken_toml_exit_78(tmp_path: Path, bundle: Path) -> None:
    config = _config(tmp_path, "sections", bundle, "mqqt", {"host": "x"})
    for command in ("check-config", "run"):
        done = _personalizer(command, "--config", str(config))
        assert (
            done.returncode == EX_CONFIG
            and '- mqqt = {table}: unknown section (did you mean "[mqtt]"?)' in done.stderr
        ), done.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[mqtt\nhost = \n")
    done = _personalizer("run", "--config", str(broken))
    assert done.returncode == EX_CONFIG and "is not valid TOML" in done.stderr, done.stderr
