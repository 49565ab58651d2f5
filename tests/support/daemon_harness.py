"""Start the real daemon against the test broker, with a config made for each test."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.broker import Broker
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch
from tests.support.state_db import saved_samples

# The daemon tests' classes: each is one of the real photos of tests/support/photos.py.
CLASSES = ("cat", "coffee", "rocket", "astronaut")


def base_sections(
    tmp_path: Path, broker: Broker, bundle: Path, frames: Path, root: str
) -> dict[str, dict[str, Any]]:
    """A config for tests: replay camera, every frame classified and published, fast training."""
    return {
        "model": {"bundle": str(bundle), "classes": list(CLASSES), "num_threads": 1},
        "camera": {"source": "replay", "path": str(frames), "fps": 10.0, "width": 320,
                   "height": 240},
        "inference": {"rate": 0.0, "agree_frames": 1, "min_confidence": 0.0,
                      "publish_interval": 0.0},
        "training": {"min_epoch_interval": 0.0, "autosave_interval": 5.0},
        "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": root,
                 "client_id": f"daemon-{root.replace('/', '-')}", "keepalive": 5},
        "state": {"dir": str(tmp_path / "state")},
    }  # fmt: skip


@dataclass
class Daemon:
    """A running daemon and a watcher subscribed to its topics."""

    process: DaemonProcess
    watch: MqttWatch
    sections: dict[str, dict[str, Any]]
    root: str
    state_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        """Where the daemon keeps its state."""
        return self.state_dir / "state.db"

    def saved_samples(self) -> int:
        """Samples in the state database on disk right now."""
        return saved_samples(self.state_file)

    def status(self, since: int = 0, timeout: float = 20.0, predicate=lambda s: True) -> dict:
        """The first status (from `since`) for which `predicate` holds."""
        return self.watch.wait_for(
            "status", lambda m: predicate(m.json()), timeout=timeout, since=since
        ).json()


def start_daemon(
    tmp_path: Path,
    broker: Broker,
    bundle: Path,
    frames: Path,
    root: str = "pz/test",
    overrides: dict[str, dict[str, Any]] | None = None,
    wait_online: bool = True,
    env: dict[str, str] | None = None,
) -> Daemon:
    """Write the config, start `personalizer run`, and wait until it says online.

    The watcher subscribes first when the broker runs, so it sees everything the daemon says;
    on a broker with users it logs in as the first one (and trusts the broker's TLS CA).
    """
    sections = copy.deepcopy(base_sections(tmp_path, broker, bundle, frames, root))
    for name, table in (overrides or {}).items():
        sections.setdefault(name, {}).update(table)
    config = write_config(tmp_path / f"{root.replace('/', '_')}.toml", sections)
    login = next(iter(broker.users.items()), None)
    ca = broker.tls.ca if broker.tls is not None else None
    watch = MqttWatch(broker.host, broker.port, root, credentials=login, ca=ca)
    if broker.running:
        watch.start()
    process = DaemonProcess(config, env=env).start()
    daemon = Daemon(process, watch, sections, root, Path(sections["state"]["dir"]))
    if wait_online:
        try:
            watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
        except TimeoutError:
            stop(daemon)
            raise AssertionError(f"daemon did not come online; its log:\n{process.log()}") from None
    return daemon


def stop(daemon: Daemon) -> None:
    """Stop the daemon (if still running) and the watcher."""
    daemon.process.close()
    daemon.watch.close()  # harmless if it never connected
