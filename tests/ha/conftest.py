"""Fixtures of the live Home Assistant tests: the installation, one instance for the session, and
daemons announcing themselves to it.

The instance is shared by every live test (starting one costs seconds, installing it minutes);
each test starts its own daemon under a root topic of its own, so it is its own device in Home
Assistant and no test sees another's samples. What the session measured (installation, start-up,
restart) is printed at the end of the run.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ha.installation import Installation, ensure_installation
from tests.ha.live import LiveHomeAssistant, start_home_assistant
from tests.ha.release import CURRENT
from tests.support.broker import Broker
from tests.support.daemon_harness import Daemon, start_daemon
from tests.support.debian_roots import RootError

# Measured figures, printed by pytest_terminal_summary.
TIMINGS: list[str] = []
_roots = itertools.count(1)
# One replayed photo: every frame gives the same prediction, so Home Assistant and the test
# agree on "the latest" one.
FRAMES = ["cat"]


NEEDS_ROOT = (
    f"the live Home Assistant {CURRENT} tests need root (debootstrap, chroot, mounting /proc): "
    "run `sudo make test-ha`"
)


def require_root() -> None:
    """Skip the calling test module (one line in the summary) unless this runs as root."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT, allow_module_level=True)


def pytest_terminal_summary(terminalreporter) -> None:
    """Print what the live tests measured."""
    for line in TIMINGS:
        terminalreporter.write_line(f"test-ha: {line}")


@pytest.fixture(scope="session")
def ha_installation() -> Installation:
    """Home Assistant CURRENT installed in its cached Debian sid root (built when missing)."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    started = time.monotonic()
    try:
        installation, timings = ensure_installation(report=lambda line: None)
    except RootError as error:
        pytest.fail(f"cannot prepare Home Assistant {CURRENT}: {error}", pytrace=False)
    for step, seconds, note in timings.steps:
        TIMINGS.append(f"{step}: {seconds:.1f} s ({note})")
    TIMINGS.append(f"installation ready in {time.monotonic() - started:.1f} s")
    return installation


@pytest.fixture(scope="session")
def ha_broker() -> Iterator[Broker]:
    """The mosquitto Home Assistant and the daemons share for the session."""
    with Broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def home_assistant(ha_installation: Installation, ha_broker: Broker) -> Iterator[LiveHomeAssistant]:
    """A real Home Assistant CURRENT, onboarded, with the MQTT integration on `ha_broker`."""
    live = start_home_assistant(ha_installation, ha_broker)
    found = live.problems(0)
    if found:  # the MQTT integration's own start-up, before any daemon
        live.close()
        pytest.fail("Home Assistant logged while starting:\n" + "\n\n".join(found))
    TIMINGS.append(
        f"Home Assistant {CURRENT} start-up: HTTP up in {live.timings['http up']:.1f} s, "
        f"RUNNING in {live.timings['running']:.1f} s (onboarding included), MQTT set up in "
        f"{live.timings['MQTT set up']:.1f} s"
    )
    yield live
    live.close()


def start_ha_daemon(
    tmp_path: Path,
    home_assistant: LiveHomeAssistant,
    bundle: Path,
    daemons: list[Daemon],
    form: str = "entity",
    root: str | None = None,
) -> Daemon:
    """The real daemon with Home Assistant discovery in `form` ("entity" or "device"), on a root
    topic of its own unless `root` is given (the same root and `tmp_path`: the same board)."""
    from tests.support.photos import replay_folder

    frames = replay_folder(tmp_path / "frames", FRAMES)
    daemon = start_daemon(
        tmp_path,
        home_assistant.broker,
        bundle,
        frames,
        root=root or f"pz/ha{next(_roots)}",
        overrides={
            "mqtt": {"homeassistant_discovery": True, "discovery": form},
            "camera": {"fps": 4.0},
            # Training runs until switched off, an epoch at most every half second.
            "training": {"epochs_per_cycle": 0, "min_epoch_interval": 0.5},
        },
    )
    daemons.append(daemon)
    # Serving: its camera delivered a frame (a sample can be taken) and it was classified.
    daemon.watch.wait_for("prediction", timeout=30)
    return daemon


@pytest.fixture
def ha_daemon(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    home_assistant: LiveHomeAssistant,
    bundle: Path,
    daemons: list[Daemon],
) -> Daemon:
    """The real daemon with Home Assistant discovery, on a root topic of its own; in the entity
    form unless the test is parametrized (indirectly) with "device"."""
    form = getattr(request, "param", "entity")
    return start_ha_daemon(tmp_path, home_assistant, bundle, daemons, form)


@pytest.fixture(autouse=True)
def _nothing_logged_about_mqtt(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each live test: Home Assistant logged nothing wrong about MQTT or the daemon, and
    raised no repair issue about MQTT (where it reports deprecated discovery options)."""
    if "home_assistant" not in request.fixturenames:
        yield
        return
    live: LiveHomeAssistant = request.getfixturevalue("home_assistant")
    daemon = request.getfixturevalue("ha_daemon") if "ha_daemon" in request.fixturenames else None
    since = live.instance.log_size()
    yield
    found = live.problems(since, daemon)
    assert not found, "Home Assistant logged:\n" + "\n\n".join(found)
    repairs = live.mqtt_repairs()
    assert not repairs, f"Home Assistant raised repair issues about MQTT: {repairs}"
