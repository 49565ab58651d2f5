"""Fixtures of the daemon tests: a real mosquitto, real photos, bundles, config files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A mosquitto broker of its own on a free loopback port."""
    with Broker() as running:
        yield running


@pytest.fixture
def manifest_only_bundle(tmp_path: Path) -> Path:
    """A folder with just a manifest: enough for config validation, not for running a model."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    manifest = {
        "format": "tflite-transfer-bundle",
        "format_version": 1,
        "num_classes": 3,
        "class_names": ["class_0", "class_1", "class_2"],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


CLASSES = ("cat", "coffee", "rocket", "astronaut")


@pytest.fixture(scope="session")
def bundle() -> Path:
    """A real bundle from the converter: MobileNetV2 96px alpha 0.35, pooled, softmax, Adam."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(BundleSpec())


@pytest.fixture
def photo_frames(tmp_path: Path) -> Path:
    """A replay folder of four real photos, one frame each, in CLASSES order."""
    from tests.support.photos import replay_folder

    return replay_folder(tmp_path / "frames", list(CLASSES))


@pytest.fixture
def run_daemon(tmp_path: Path, broker: Broker, bundle: Path, photo_frames: Path):
    """Start the real daemon (`personalizer run`) with overrides; stopped after the test."""
    from .daemon_harness import start_daemon, stop

    started = []

    def run(frames: Path | None = None, **kwargs):
        daemon = start_daemon(tmp_path, broker, bundle, frames or photo_frames, **kwargs)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        stop(daemon)
