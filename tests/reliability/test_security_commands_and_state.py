"""What a client may change, and what the daemon keeps on disk.

- `[mqtt] commands = false` makes a read-only daemon: it does not even subscribe to commands, so
  a command changes nothing and gets no answer; a list enables only those commands, and the
  others are refused with `ok: false` naming `mqtt.commands`.
- The state folder is 0700 and the state file 0600; a state file holding a pickled object array
  is never unpickled: it is set aside as corrupt and the daemon starts fresh.
"""

from __future__ import annotations

import pickle
import sqlite3
import stat
import time
import zlib
from pathlib import Path

from tests.support.broker import Broker
from tests.support.daemon_harness import Daemon, start_daemon
from tests.support.state_db import state_digest


def _take_samples(daemon: Daemon, *classes: str) -> None:
    daemon.watch.wait_for("prediction", timeout=30)  # frames are flowing
    for class_name in classes:
        result = daemon.watch.command("sample", {"class": class_name})
        assert result["ok"], result


def test_read_only_daemon_does_not_take_commands(
    tmp_path: Path, bundle: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    with Broker() as broker:
        # First a normal run leaves a state with samples in the state folder.
        daemon = start_daemon(tmp_path, broker, bundle, photo_frames, "pz/rw")
        daemons.append(daemon)
        _take_samples(daemon, "cat", "coffee")
        assert daemon.process.terminate()[0] == 0
        daemon.watch.close()
        before = state_digest(daemon.state_file)

        daemon = start_daemon(
            tmp_path,
            broker,
            bundle,
            photo_frames,
            "pz/rw",
            overrides={"mqtt": {"commands": False}},
        )
        daemons.append(daemon)
        daemon.watch.wait_for("prediction", timeout=30)
        mark = daemon.watch.mark()
        for name, payload in (
            ("sample", b'{"class": "cat"}'),
            ("reset", b'{"all": true}'),
            ("train", b'{"action": "start"}'),
            ("save", b"{}"),
        ):
            daemon.watch.publish(f"cmd/{name}", payload)
        time.sleep(2)
        topics = {m.topic for m in daemon.watch.messages[mark:]}
        assert not [t for t in topics if "/cmd/" in t and t.endswith("/result")], topics
        assert daemon.watch.received("sample", since=mark) == []
        latest = daemon.watch.received("status")[-1].json()
        assert latest["samples"] == {"cat": 1, "coffee": 1, "rocket": 0, "astronaut": 0}
        assert state_digest(daemon.state_file) == before
        assert "MQTT: connected" in daemon.process.log()


def test_commands_outside_the_list_are_refused(
    tmp_path: Path, bundle: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    with Broker() as broker:
        daemon = start_daemon(
            tmp_path,
            broker,
            bundle,
            photo_frames,
            "pz/list",
            overrides={"mqtt": {"commands": ["sample", "train"]}},
        )
        daemons.append(daemon)
        _take_samples(daemon, "cat", "rocket")
        before = state_digest(daemon.state_file)
        for name, payload in (("reset", {"all": True}), ("save", {}), ("classify", {"image": ""})):
            result = daemon.watch.command(name, payload)
            assert result["ok"] is False, result
            assert f'command "{name}" is switched off' in result["error"]
            assert "mqtt.commands" in result["error"]
            assert result["request_id"] is not None
        assert daemon.watch.command("train", {"action": "stop"})["ok"]
        assert state_digest(daemon.state_file) == before
        assert daemon.watch.received("status")[-1].json()["samples"]["cat"] == 1


class _Trap:
    """Unpickling this creates `path`: proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_state_is_private_and_never_unpickled(
    tmp_path: Path, bundle: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    state = tmp_path / "state"
    with Broker() as broker:
        daemon = start_daemon(tmp_path, broker, bundle, photo_frames, "pz/state")
        daemons.append(daemon)
        _take_samples(daemon, "astronaut")
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert stat.S_IMODE(daemon.state_file.stat().st_mode) == 0o600
        assert daemon.process.terminate()[0] == 0
        daemon.watch.close()

        # The same state database, with the saved head replaced by a pickle (checksum made
        # to match, so only the daemon's refusal to unpickle stands between it and the trap).
        trap = tmp_path / "unpickled"
        evil = pickle.dumps(_Trap(trap))
        with sqlite3.connect(daemon.state_file) as db:
            db.execute("UPDATE tensors SET data = ?, crc = ?", (evil, zlib.crc32(evil)))
        assert not trap.exists()

        daemon = start_daemon(tmp_path, broker, bundle, photo_frames, "pz/state")
        daemons.append(daemon)
        status = daemon.status(predicate=lambda s: bool(s.get("warnings")))
        assert "corrupt" in " ".join(status["warnings"]), status
        assert status["samples"] == {"cat": 0, "coffee": 0, "rocket": 0, "astronaut": 0}
        aside = [
            p for p in state.glob("state.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
        ]
        assert len(aside) == 1
        assert not trap.exists()
