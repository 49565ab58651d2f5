"""Fixtures shared by every suite: a real mosquitto, a real bundle, real photos, the daemon.

Suites that need a TensorFlow-free process (runtime, daemon, reliability, board) get bundles
through tests/support/bundles.py, which converts them in a subprocess with the converter's
environment; the converter suite has its own fixtures (tests/converter/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import Broker
from tests.support.daemon_harness import CLASSES, Daemon, start_daemon, stop

# Tests that use these run a real mosquitto (and mostly the daemon as a subprocess): marked
# `broker`, they stay out of the fast lane (`make test-fast` runs -m "not broker").
BROKER_FIXTURES = {"broker", "run_daemon", "daemons"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a broker (see BROKER_FIXTURES)."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A mosquitto broker of its own on a free loopback port."""
    with Broker() as running:
        yield running


@pytest.fixture(scope="session")
def bundle() -> Path:
    """A real bundle from the converter: MobileNetV2 96px alpha 0.35, pooled, softmax, Adam,
    4 classes (A, B, C, D)."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(BundleSpec())


@pytest.fixture(scope="session")
def spatial_bundle() -> Path:
    """As ``bundle`` but unpooled: a (3, 3, 1280) bottleneck (another base's features)."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(BundleSpec(pooling="none"))


@pytest.fixture
def photo_frames(tmp_path: Path) -> Path:
    """A replay folder of four real photos, one frame each, in CLASSES order."""
    from tests.support.photos import replay_folder

    return replay_folder(tmp_path / "frames", list(CLASSES))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """A list the test appends the daemons it started to; each is stopped after the test."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        stop(daemon)


@pytest.fixture
def run_daemon(
    tmp_path: Path, broker: Broker, bundle: Path, photo_frames: Path, daemons: list[Daemon]
) -> Callable[..., Daemon]:
    """Start the real daemon (`personalizer run`) with config overrides (and another bundle:
    `bundle_dir`); stopped after the test."""

    def run(frames: Path | None = None, bundle_dir: Path | None = None, **kwargs: Any) -> Daemon:
        model = bundle_dir or bundle
        daemon = start_daemon(tmp_path, broker, model, frames or photo_frames, **kwargs)
        daemons.append(daemon)
        return daemon

    return run
