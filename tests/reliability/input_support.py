"""Shared pieces of the bad-input and security tests: a bundle, replay frames, the daemon.

Every test here runs the real `personalizer run` process against a real mosquitto (started by
the test, with the configuration the test needs) through tests/daemon/daemon_harness.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.conftest import CLASSES
from tests.daemon.daemon_harness import Daemon, stop

__all__ = ["CLASSES", "daemons", "input_bundle", "input_frames", "sha256_of"]


@pytest.fixture(scope="session")
def input_bundle() -> Path:
    """The small pooled test bundle (MobileNetV2 96 px, alpha 0.35, softmax, Adam)."""
    from tests.support.bundles import BundleSpec, build_bundle

    return build_bundle(BundleSpec())


@pytest.fixture
def input_frames(tmp_path: Path) -> Path:
    """A replay folder of four real photos, in CLASSES order."""
    from tests.support.photos import replay_folder

    return replay_folder(tmp_path / "frames", list(CLASSES))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """A list the test appends its started daemons to; each is stopped after the test."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        stop(daemon)


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
