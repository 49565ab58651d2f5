"""Damaged bundles: the daemon refuses each with a message naming the file and the field.

Each case copies the real test bundle and breaks one thing: a file missing, a flipped byte (the
sha256 no longer matches), a manifest field missing or of the wrong type, a future format
version. `personalizer run` must exit 78 (EX_CONFIG), which the systemd unit lists in
RestartPreventExitStatus=, so systemd does not restart it in a loop.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_process import write_config

EX_CONFIG = 78
REPO = Path(__file__).resolve().parents[2]
MODELS = ("bottleneck", "initialize", "train_head", "inference", "optimizer")


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _flip(name: str) -> Callable[[Path], None]:
    def flip(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x40
        (folder / name).write_bytes(bytes(data))

    return flip


def _manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target = manifest
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return change


# (id, how to break the bundle, words the refusal must contain: the file and the field)
CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
    *[(f"missing-{m}", _remove(f"{m}.tflite"), (f"{m}.tflite", "missing")) for m in MODELS],
    ("missing-manifest", _remove("manifest.json"), ("manifest.json",)),
    *[(f"flipped-{m}", _flip(f"{m}.tflite"), (f"{m}.tflite", "sha256")) for m in MODELS],
    *[
        (f"no-{field}", _manifest(_set(field, KeyError)), ("manifest.json", field))
        for field in (
            "format_version",
            "num_classes",
            "files",
            "parameters",
            "input",
            "bottleneck",
            "optimizer",
            "models",
        )
    ],
    (
        "no-files-entry",
        _manifest(_set("files/inference.tflite", KeyError)),
        ("manifest.json", "models.inference.file", "inference.tflite", "not listed in files"),
    ),
    ("num_classes-text", _manifest(_set("num_classes", "4")), ("manifest.json", "num_classes")),
    ("files-list", _manifest(_set("files", [])), ("manifest.json", "files")),
    ("parameters-object", _manifest(_set("parameters", {})), ("manifest.json", "parameters")),
    ("input.shape-text", _manifest(_set("input/shape", "224")), ("manifest.json", "input.shape")),
    (
        "sha256-number",
        _manifest(_set("files/inference.tflite/sha256", 5)),
        ("manifest.json", "sha256"),
    ),
    (
        "size-text",
        _manifest(_set("files/inference.tflite/size", "1348")),
        ("manifest.json", "size"),
    ),
    (
        "format-version-text",
        _manifest(_set("format_version", "1")),
        ("manifest.json", "format_version"),
    ),
    (
        "future-format-version",
        _manifest(_set("format_version", 2)),
        ("manifest.json", "format_version 2"),
    ),
    ("other-format", _manifest(_set("format", "onnx-bundle")), ("manifest.json", "format")),
    (
        "manifest-not-json",
        lambda f: (f / "manifest.json").write_text("{"),
        ("manifest.json", "line 1 column"),
    ),
]


@pytest.mark.parametrize(("name", "damage", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_damaged_bundle_is_refused_naming_file_and_field(
    name: str,
    damage: Callable[[Path], None],
    words: tuple[str, ...],
    tmp_path: Path,
    bundle: Path,
) -> None:
    damaged = tmp_path / "bundle"
    shutil.copytree(bundle, damaged)
    damage(damaged)
    config = write_config(
        tmp_path / "personalizer.toml",
        {
            "model": {"bundle": str(damaged), "num_threads": 1},
            "camera": {"source": "replay", "path": str(tmp_path)},
            "mqtt": {"host": "127.0.0.1", "port": 1},
            "state": {"dir": str(tmp_path / "state")},
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "personalizer", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EX_CONFIG, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    refusal = [line for line in done.stderr.splitlines() if "model.bundle" in line]
    assert refusal, done.stderr
    for word in words:
        assert word in done.stderr, f"{word!r} not named in:\n{done.stderr}"
    assert not (tmp_path / "state" / "state.db").exists()


def test_systemd_does_not_restart_on_exit_78() -> None:
    unit = (REPO / "systemd" / "personalizer.service").read_text().splitlines()
    settings = [line.split("=", 1) for line in unit if "=" in line and not line.startswith("#")]
    values: dict[str, list[str]] = {}
    for key, value in settings:
        values.setdefault(key.strip(), []).append(value.strip())
    assert values["Restart"] == ["on-failure"]
    prevented = " ".join(values["RestartPreventExitStatus"]).split()
    assert str(EX_CONFIG) in prevented
