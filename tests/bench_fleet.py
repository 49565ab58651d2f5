"""The fleet's benchmark (a section of ``make bench``): 500 samples reaching a fresh board.

A teaching board (the real daemon) takes 500 samples of four real objects through `cmd/sample`
and shares them with its group on a mosquitto with persistence. Then a fresh board (an empty
state, the same bundle) joins through a relay that counts the bytes on its connection. Measured:

- seconds from the fresh board's connect until all 500 are stored, and until the training cycle
  it starts by itself (``fleet.train_delay`` after the last sample: the default 5 s is included)
  has ended and `cmd/classify` answers with a taught class;
- what a Raspberry Pi would take: 500 base-model invokes at 10-30 ms (a Pi's range) plus the
  rest of the time measured here (decoding, SQLite, MQTT: the time to store them less the
  invokes, timed alone), taken four times slower;
- bytes on the wire per sample (broker -> board: MQTT headers, topic, the JSON line, the JPEG and
  acknowledgements) as a multiple of the sample's JPEG (target <= 1.4);
- the broker's retained store: the retained messages' bytes, and mosquitto.db after it saved.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from personalizer import TransferLearningModel
from personalizer.images import decode_image
from tests.support import photos
from tests.support.broker import Broker
from tests.support.bundles import BundleSpec
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch, b64
from tests.support.tcp_counter import CountingRelay
from tests.support.waiting import wait_until

SAMPLES = 500
SHOTS = 25  # different shots of each object, taken over and over
PI_INVOKE_MS = (10.0, 30.0)  # a base-model invoke on a Raspberry Pi (the brief's range)
PI_SLOWER = 4.0  # the rest of the work (SQLite, JSON, Python) on a Pi against this machine
GROUP = "personalizer-fleet/bench"
BUNDLE = BundleSpec(
    image_size=160, alpha=1.0, weights="pretrained", num_classes=8, class_names=tuple("ABCDEFGH")
)


def _board(work: Path, broker: Broker, bundle: Path, frames: Path, name: str, port: int) -> Any:
    sections = base_sections(work / name, broker, bundle, frames, f"bench/{name}")
    sections["mqtt"]["port"] = port
    sections["state"]["dir"] = str(work / name / "state")
    sections["camera"]["fps"] = 2.0
    sections["inference"]["rate"] = 2.0
    sections["fleet"] = {"group": "bench", "board": name}
    (work / name).mkdir()
    watch = MqttWatch(broker.host, broker.port, f"bench/{name}").start()
    process = DaemonProcess(write_config(work / name / "board.toml", sections)).start()
    return process, watch


def _teach(watch: MqttWatch) -> None:
    images = {
        name: [b64(photos.encode(photos.variant(name, i))) for i in range(SHOTS)]
        for name in CLASSES
    }
    for i in range(SAMPLES):
        name = CLASSES[i % len(CLASSES)]
        result = watch.command("sample", {"class": name, "image": images[name][i // 4 % SHOTS]})
        assert result["ok"], result


def _invoke_ms(bundle: Path, jpeg: bytes) -> float:
    """The base model's part of taking a sample (its picture already decoded): the fastest of
    30 runs, the one least disturbed by the other work on the machine, so that the rest of the
    time, and the Pi estimate built on it, err on the long side."""
    model = TransferLearningModel(bundle, num_threads=1, seed=0)
    image = decode_image(jpeg, 4096 * 4096)
    times = []
    for _ in range(30):
        started = time.perf_counter()
        model.bottleneck(image)
        times.append(time.perf_counter() - started)
    return min(times[5:]) * 1e3


def measure_fleet(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """500 samples from a teaching board to a fresh one (see the module doc)."""
    from tests.bench import _size

    bundle = bench.bundle(BUNDLE)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        work = Path(scratch)
        broker = Broker(persistence=True).start()
        group = MqttWatch(broker.host, broker.port, GROUP).start()
        frames = photos.replay_folder(work / "frames", list(CLASSES))
        started: list[tuple[DaemonProcess, MqttWatch]] = []
        try:
            teacher, teacher_watch = _board(work, broker, bundle, frames, "a", broker.port)
            started.append((teacher, teacher_watch))
            teacher_watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
            _teach(teacher_watch)
            wait_until(
                lambda: len({m.topic for m in group.messages if "/a/s/" in m.topic}) == SAMPLES,
                120,
                "the teaching board's samples on the broker",
            )
            with sqlite3.connect(f"file:{work / 'a/state/state.db'}?mode=ro", uri=True) as db:
                jpeg = db.execute("SELECT AVG(LENGTH(image)) FROM samples").fetchone()[0]
                some = db.execute("SELECT image FROM samples LIMIT 1").fetchone()[0]

            with CountingRelay(broker.host, broker.port) as relay:
                fresh, watch = _board(work, broker, bundle, frames, "b", relay.port)
                started.append((fresh, watch))
                watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
                connected = time.monotonic()
                watch.wait_for(
                    "status",
                    lambda m: sum(m.json()["samples"].values()) == SAMPLES,
                    timeout=600,
                )
                stored = time.monotonic() - connected
                down, _ = relay.counts()
                watch.wait_for(
                    "status",
                    lambda m: m.json()["state"] == "idle" and m.json()["last_cycle"] is not None,
                    timeout=600,
                )
                probe = b64(photos.encode(photos.variant("coffee", SHOTS + 1)))
                answer = watch.command("classify", {"image": probe})
                trained = time.monotonic() - connected
            # What a newcomer gets: every retained message of the group.
            with MqttWatch(broker.host, broker.port, GROUP) as late:
                wait_until(
                    lambda: sum(1 for m in late.messages if "/s/" in m.topic) == SAMPLES,
                    60,
                    "the group's retained sample records",
                )
                retained = sum(len(m.payload) + len(m.topic) for m in late.messages if m.retain)
        finally:
            for process, process_watch in started:
                process.close()
                process_watch.close()
            group.close()
            broker.stop()
        store = broker.folder / "mosquitto.db"
        store_size = store.stat().st_size if store.exists() else 0
        broker.close()
    invoke = _invoke_ms(bundle, some)
    rest = max(0.0, stored - SAMPLES * invoke / 1e3)
    low, high = (SAMPLES * ms / 1e3 + rest * PI_SLOWER for ms in PI_INVOKE_MS)
    per_sample = down / SAMPLES
    ratio = per_sample / jpeg
    return [
        row("9 fleet", f"{SAMPLES} samples reach a fresh board: all stored", f"{stored:.1f} s",
            "from its connect (x86)"),
        row("9 fleet", "... and its own training cycle ended, classify answers",
            f"{trained:.1f} s", f"incl. train_delay 5 s; said {answer.get('class')}"),
        row("9 fleet", "Raspberry Pi estimate: all stored", f"{low:.0f}-{high:.0f} s",
            f"base invoke {invoke:.1f} ms here, {PI_INVOKE_MS[0]:.0f}-{PI_INVOKE_MS[1]:.0f} ms "
            f"on a Pi; the other {rest:.1f} s x{PI_SLOWER:.0f}"),
        row("9 fleet", "bytes on the wire per sample, broker -> board", _size(per_sample),
            f"JPEG {_size(jpeg)}", ratio, "<= 1.4", ratio <= 1.4),
        row("9 fleet", f"broker's retained store, {SAMPLES} samples", _size(retained),
            f"mosquitto.db {_size(store_size)}"),
    ]  # fmt: skip
