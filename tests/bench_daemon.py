"""The daemon's end-to-end benchmark (a section of `make bench`): frame in -> prediction out.

The real daemon (`personalizer run`, a subprocess) runs a replay camera of real photos against a
private mosquitto, with every frame classified and published (inference rate 0, agree_frames 1,
publish_interval 0). A subscriber in this process records each prediction's arrival; latency is
arrival time minus the frame's capture time (`ts` in the payload), and the frame rate is
predictions per second. Both are compared with the raw base-model interpreter (bottleneck.tflite
alone, same thread count, fed the same photos) measured in the same run: target >= 0.9 of its rate
while idle, >= 0.8 while the daemon trains (default pacing, min_epoch_interval 0.2 s).

This machine's cores are shared, so the two are measured in alternating rounds: the daemon is
frozen (SIGSTOP) while the raw interpreter runs, then thawed (SIGCONT) for its own window; each
round gives a ratio, and the table shows the median. Frames caught by a freeze are not counted.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.support import photos
from tests.support.broker import Broker
from tests.support.bundles import BundleSpec
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch, b64

SPEC = BundleSpec(image_size=224, alpha=1.0, pooling="avg")  # MobileNetV2, (1280,) bottleneck
CLASSES = ("cat", "coffee", "rocket", "astronaut")
ROOT = "bench/e2e"
ROUNDS = 3
WINDOW = 3.0  # seconds of daemon frames per round
RAW_SECONDS = 2.0  # seconds of raw invokes per round
SETTLE = 0.7  # seconds after a thaw before frames count again
SAMPLES_PER_CLASS = 10


class RawBase:
    """The bare base model (bottleneck.tflite) in this process, fed the daemon's photos."""

    def __init__(self, bundle: Path, runtime: str, threads: int, size: int) -> None:
        from personalizer.model.interpreters import select_runtime

        chosen = select_runtime(runtime)
        self.interpreter = chosen.new_interpreter(
            (bundle / "bottleneck.tflite").read_bytes(), threads
        )
        self.interpreter.allocate_tensors()
        self.index = self.interpreter.get_input_details()[0]["index"]
        # The photos as the model sees them (the activations, hence the speed, depend on them).
        self.inputs = [
            (photos.photo(name, size).astype(np.float32) / 255.0)[None] for name in CLASSES
        ]
        for x in self.inputs:
            self.interpreter.set_tensor(self.index, x)
            self.interpreter.invoke()

    def rate(self, seconds: float) -> float:
        """Invokes per second (cycling through the photos) over `seconds`."""
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.interpreter.set_tensor(self.index, self.inputs[count % len(self.inputs)])
            self.interpreter.invoke()
            count += 1
        return count / (time.perf_counter() - started)


class _Arrivals:
    """Prediction arrivals, recorded cheaply in paho's thread and parsed afterwards."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.recording = False
        self.items: list[tuple[float, bytes]] = []

    def __call__(self, message: Any) -> None:
        if self.recording and message.topic == self.topic:
            self.items.append((message.received, message.payload))


@dataclass
class Measured:
    """Rounds of one condition: daemon fps, raw fps, and every frame's latency (ms)."""

    fps: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Median over the rounds of daemon fps / raw fps."""
        return statistics.median(f / r for f, r in zip(self.fps, self.raw, strict=True))

    def percentile(self, q: float) -> float:
        """The q-th quantile (0..1) of the latencies."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _rounds(daemon: DaemonProcess, raw: RawBase, arrivals: _Arrivals) -> Measured:
    measured = Measured()
    for _ in range(ROUNDS):
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            measured.raw.append(raw.rate(RAW_SECONDS))
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        time.sleep(SETTLE)
        arrivals.items.clear()
        arrivals.recording = True
        time.sleep(WINDOW)
        arrivals.recording = False
        items = list(arrivals.items)
        if len(items) < 2:
            raise RuntimeError(f"only {len(items)} predictions in {WINDOW} s: is it running?")
        measured.fps.append((len(items) - 1) / (items[-1][0] - items[0][0]))
        measured.latencies += [(t - json.loads(p)["ts"]) * 1e3 for t, p in items]
    return measured


def measure_end_to_end(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """Run the daemon idle and training; returns the section's table rows (built by `row`)."""
    bundle = bench.bundle(SPEC)
    # The daemon's own default (config: num_threads = 0): one thread less than the cores.
    threads = max(1, min(4, (os.cpu_count() or 1) - 1))
    raw = RawBase(bundle, bench.runtime, threads, SPEC.image_size)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch, Broker() as broker:
        work = Path(scratch)
        frames = photos.replay_folder(work / "frames", list(CLASSES))
        config = write_config(
            work / "bench.toml",
            {
                "model": {"bundle": str(bundle), "classes": list(CLASSES), "runtime": bench.runtime,
                          "num_threads": threads},
                # Frames at the model's size, as a camera's low-res stream would deliver them;
                # the replay rate is far above what the model can do, so frames never wait.
                "camera": {"source": "replay", "path": str(frames), "width": SPEC.image_size,
                           "height": SPEC.image_size, "fps": 1000.0},
                "inference": {"rate": 0.0, "agree_frames": 1, "min_confidence": 0.0,
                              "publish_interval": 0.0},
                "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": ROOT},
                "state": {"dir": str(work / "state")},
            },
        )  # fmt: skip
        arrivals = _Arrivals(f"{ROOT}/prediction")
        with MqttWatch(broker.host, broker.port, ROOT) as watch:
            watch.on_message = arrivals
            daemon = DaemonProcess(config).start()
            try:
                watch.wait_for("availability", lambda m: m.text == "online", timeout=120)
                watch.wait_for("prediction", timeout=60)
                watch.messages.clear()
                idle = _rounds(daemon, raw, arrivals)
                for name in CLASSES:
                    for index in range(SAMPLES_PER_CLASS):
                        image = b64(photos.encode(photos.variant(name, index)))
                        result = watch.command("sample", {"class": name, "image": image})
                        if not result["ok"]:
                            raise RuntimeError(f"sample refused: {result}")
                watch.messages.clear()
                watch.command("train", {"action": "start"})
                watch.wait_for("loss", timeout=60)
                training = _rounds(daemon, raw, arrivals)
                epochs = len(watch.received("loss"))
                watch.command("train", {"action": "stop"})
            finally:
                code = daemon.terminate()[0] if daemon.alive() else daemon.wait(5)
            if code != 0:
                raise RuntimeError(f"the daemon exited with {code}:\n{daemon.log()[-2000:]}")
    rows = []
    samples = SAMPLES_PER_CLASS * len(CLASSES)
    for label, measured, target in (
        ("idle", idle, 0.9),
        (f"while training ({samples} samples, {epochs} epochs)", training, 0.8),
    ):
        ratio = measured.ratio
        rows.append(
            row(
                "daemon e2e",
                f"frame -> prediction published, {label}",
                f"{statistics.median(measured.fps):.1f} fps",
                f"{statistics.median(measured.raw):.1f} fps raw base, {threads} thr",
                ratio,
                f">= {target:.2f}",
                ratio >= target,
            )
        )
        rows.append(
            row(
                "daemon e2e",
                f"latency frame -> published, {label}",
                f"p50 {measured.percentile(0.5):.1f} ms, p99 {measured.percentile(0.99):.1f} ms",
                f"{len(measured.latencies)} frames",
            )
        )
        # The daemon's cost per frame beyond the bare invoke: what a slower board adds it to.
        overhead = statistics.median(
            1e3 / f - 1e3 / r for f, r in zip(measured.fps, measured.raw, strict=True)
        )
        rows.append(
            row(
                "daemon e2e",
                f"time per frame beyond the raw invoke, {label}",
                f"{overhead:.2f} ms",
                f"raw invoke {1e3 / statistics.median(measured.raw):.2f} ms",
            )
        )
    return rows
