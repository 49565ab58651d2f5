"""`kill -9` at 30 seeded random moments during sample intake, training and saving: after every
restart the state database is sound, every sample whose `sample` event went out is there, and
the head is that of the last complete save (never a mix, never unreadable).

One real daemon process is restarted 30 times against one broker, with the small pooled bundle.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch
from tests.support.state_db import check_integrity, head_digest, saved_steps

ROOT = "pz/faults-kill"
KILLS = 30
SEED = 6


def send(watch: MqttWatch, name: str, payload: dict[str, Any]) -> None:
    """Publish a command without waiting for anything (the daemon may die any moment)."""
    watch.client.publish(watch.topic(f"cmd/{name}"), json.dumps(payload), qos=1)


def acknowledged(watch: MqttWatch) -> Counter[str]:
    """Per class, the highest count any published `sample` event announced."""
    counts: Counter[str] = Counter()
    for message in watch.received("sample"):
        event = message.json()
        counts[event["class"]] = max(counts[event["class"]], event["count"])
    return counts


def test_state_survives_kill_9_during_intake_training_and_saving(
    tmp_path: Path, broker: Any, bundle: Path, photo_frames: Path
) -> None:
    rng = random.Random(SEED)
    # The schedule is drawn first, so it is the same on every run whatever the timing.
    phase_names = ("intake", "training", "saving")
    schedule = [(rng.choice(phase_names), rng.uniform(0.1, 2.0)) for _ in range(KILLS)]
    sections = base_sections(tmp_path, broker, bundle, photo_frames, ROOT)
    sections["training"].update(autosave_interval=1.0, min_epoch_interval=0.0)
    config = write_config(tmp_path / "kill.toml", sections)
    state_file = Path(sections["state"]["dir"]) / "state.db"
    watch = MqttWatch(broker.host, broker.port, ROOT).start()
    phases: Counter[str] = Counter()
    leftovers = 0
    try:
        for round_number in range(KILLS + 1):
            on_disk = None
            if state_file.exists():
                assert check_integrity(state_file) == "ok", f"round {round_number}"
                if saved_steps(state_file):  # a trained head was saved: it must come back
                    on_disk = head_digest(state_file)
            mark = watch.mark()
            daemon = DaemonProcess(config).start()
            try:
                watch.wait_for("availability", lambda m: m.text == "online", 60, mark)
                status = watch.wait_for("status", since=mark).json()
                context = f"restart {round_number}; log:\n{daemon.log()[-3000:]}"
                assert status["warnings"] == [], context
                for name, count in acknowledged(watch).items():
                    assert status["samples"][name] >= count, f"lost samples of {name}; {context}"
                if on_disk is not None:
                    # What was loaded is exactly the last complete save: saving it unchanged
                    # writes the same head.
                    assert watch.command("save", {})["ok"], context
                    assert head_digest(state_file) == on_disk, f"loaded head differs; {context}"
                if round_number == KILLS:
                    break
                phase, kill_after = schedule[round_number]
                phases[phase] += 1
                if phase != "intake":
                    send(watch, "sample", {"class": rng.choice(CLASSES)})
                    send(watch, "train", {"action": "start"})
                deadline = time.monotonic() + kill_after
                while time.monotonic() < deadline:
                    if phase == "saving":
                        send(watch, "save", {})
                    else:
                        send(watch, "sample", {"class": rng.choice(CLASSES)})
                    time.sleep(rng.uniform(0.01, 0.08))
                gone = watch.mark()
                daemon.kill()
                # The broker's last will comes after everything the daemon published before.
                watch.wait_for("availability", lambda m: m.text == "offline", 20, gone)
                leftovers += state_file.with_name("state.db-wal").exists()
            finally:
                if round_number == KILLS:
                    code, _ = daemon.terminate()
                    assert code == 0
                daemon.kill()
    finally:
        watch.close()
    assert sum(acknowledged(watch).values()) >= 30, "too few samples were acknowledged to judge"
    print(f"kill -9: phases {dict(phases)}; {leftovers} kill(s) left a WAL to recover")
