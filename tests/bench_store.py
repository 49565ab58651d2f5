"""Benchmarks of the sample store, the camera edge, the open-set test and the metrics.

Sections of ``make bench`` (tests/bench.py lists them):

- the sample store through the real daemon and MQTT: the `cmd/sample` acknowledgement at sample
  10, 100 and 1000, and the bytes the daemon writes per sample (counted below SQLite by
  tests/support/failing_disk.c), for a 7x7x1280 and a pooled bundle; the daemon's RSS with
  1000 samples, and its peak after two training epochs and an evaluation on all of them;
- float16 samples: accuracy on real photos, stored as float16 against float32;
- the camera edge: frame -> model input against the base model's invoke, for the frames the
  cameras now deliver; ``add_sample`` against ``predict``;
- the validation estimate (k-fold) and the open-set test at 1000 samples.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from personalizer import TransferLearningModel
from tests.support import photos
from tests.support.broker import Broker
from tests.support.bundles import BundleSpec
from tests.support.daemon_harness import base_sections
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.failing_disk import FailingDisk, read_counter
from tests.support.faults import rss_bytes
from tests.support.mqtt_watch import MqttWatch

STORE_SAMPLES = 1000
CHECKPOINTS = (10, 100, 1000)
WINDOW = 10  # samples around each checkpoint whose latencies give its median
PRETRAINED = BundleSpec(
    image_size=160, alpha=1.0, weights="pretrained", num_classes=8, class_names=tuple("ABCDEFGH")
)
OBJECTS = ("astronaut", "cat", "coffee", "rocket", "motorcycle", "retina", "galaxies", "tissue")


def _store_run(bench: Any, spec: BundleSpec) -> dict[str, Any]:
    """1000 `cmd/sample` through MQTT into the real daemon; latencies and bytes written."""
    classes = ("cat", "coffee", "rocket", "astronaut")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as scratch, Broker() as broker:
        work = Path(scratch)
        frames = photos.replay_folder(work / "frames", list(classes))
        sections = base_sections(work, broker, bench.bundle(spec), frames, "bench/store")
        sections["model"]["num_threads"] = bench.threads
        config = write_config(work / "store.toml", sections)
        disk = FailingDisk(work / "state", work / "never")
        counter = work / "written"
        env = disk.environment(counter)
        watch = MqttWatch(broker.host, broker.port, "bench/store").start()
        daemon = DaemonProcess(config, env=env).start()
        try:
            watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
            watch.wait_for("prediction", timeout=60)
            latencies, written = [], []
            for i in range(STORE_SAMPLES):
                before = read_counter(counter)
                started = time.perf_counter()
                result = watch.command("sample", {"class": classes[i % 4]}, timeout=60)
                latencies.append(time.perf_counter() - started)
                assert result["ok"], result
                written.append(read_counter(counter) - before)
            rss = rss_bytes(daemon.pid)
            # Then the memory-hungry work on all of them: training epochs and an evaluation.
            watch.command("train", {"action": "start"})
            watch.wait_for("loss", lambda m: m.json()["epoch"] >= 2, timeout=600)
            watch.command("train", {"action": "stop"}, timeout=120)
            evaluated = watch.command("evaluate", {}, timeout=600)
            assert evaluated.get("samples") == STORE_SAMPLES, evaluated
            peak = rss_bytes(daemon.pid, "VmHWM")
            with sqlite3.connect(work / "state" / "state.db") as db:
                own = db.execute(
                    "SELECT AVG(LENGTH(bottleneck) + COALESCE(LENGTH(image), 0)) FROM samples"
                ).fetchone()[0]
        finally:
            daemon.close()
            watch.close()
    return {
        "latencies": latencies,
        "written": written,
        "sample_bytes": own,
        "rss": rss,
        "peak": peak,
    }


def measure_sample_store(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """Ack latency and bytes written per sample at 10, 100, 1000 samples; daemon RSS."""
    from tests.bench import POOLED, SPATIAL, _size

    rows = []
    for label, spec in (("7x7x1280", SPATIAL), ("pooled 1280", POOLED)):
        run = _store_run(bench, spec)
        lat, written, own = run["latencies"], run["written"], run["sample_bytes"]
        at = {n: statistics.median(lat[max(0, n - WINDOW) : n]) * 1e3 for n in CHECKPOINTS}
        for n in CHECKPOINTS:
            rows.append(row("5 store", f"{label}: cmd/sample ack at sample {n}", f"{at[n]:.1f} ms"))
        ratio = at[1000] / at[10]
        rows.append(
            row("5 store", f"{label}: ack at 1000 vs at 10", f"{at[1000]:.1f} ms",
                f"{at[10]:.1f} ms", ratio, "<= 1.2", ratio <= 1.2)
        )  # fmt: skip
        for n in CHECKPOINTS:
            per_sample = sum(written[:n]) / n  # amortised: WAL writes and its checkpoints
            share = per_sample / own
            rows.append(
                row("5 store", f"{label}: bytes written per sample, first {n}",
                    _size(per_sample), f"sample itself {_size(own)}", share, "<= 3",
                    share <= 3)
            )  # fmt: skip
        rss, peak = run["rss"], run["peak"]
        rows.append(
            row("5 store", f"{label}: daemon RSS with {STORE_SAMPLES} samples", _size(rss),
                "", None, "<= 200 MiB", rss <= 200 * 1024 * 1024)
        )  # fmt: skip
        rows.append(
            row("5 store", f"{label}: daemon peak RSS, then 2 epochs + evaluate", _size(peak),
                "", None, "<= 200 MiB", peak <= 200 * 1024 * 1024)
        )  # fmt: skip
    return rows


def _accuracy(model: TransferLearningModel) -> float:
    names = model.classes
    for name in names:
        for shot in range(5):
            model.add_sample(photos.variant(name, shot), name)
    model.initialize_from_samples()
    model.train(20)
    right = total = 0
    for name in names:
        for shot in range(5, 15):
            total += 1
            right += model.predict(photos.variant(name, shot))[0].class_name == name
    return right / total


def measure_float16(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """Held-out accuracy on 8 real objects with samples kept as float16 vs float32."""
    bundle = bench.bundle(PRETRAINED)
    results = {}
    for dtype in (np.float16, np.float32):
        model = TransferLearningModel(
            bundle, list(OBJECTS), runtime=bench.runtime, num_threads=bench.threads, seed=0,
            sample_dtype=dtype,
        )  # fmt: skip
        results[dtype] = _accuracy(model)
    a16, a32 = results[np.float16], results[np.float32]
    return [
        row("6 float16", "held-out accuracy, 8 real objects x 5 shots, samples as float16",
            f"{a16:.3f}", f"{a32:.3f} as float32", a16 / a32 if a32 else None)
    ]  # fmt: skip


def measure_camera_edge(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """Frame -> model input against the base invoke; add_sample against predict."""
    from tests.bench import POOLED, SPATIAL, _paired, _ratio_row
    from tests.support.synthetic_images import colour_image

    rows = []
    model = bench.model(POOLED)
    side = model.input_shape[1]
    rng = np.random.default_rng(0)
    x = rng.random(model.input_shape, dtype=np.float32)
    frames = {
        f"replay frame {side}x{round(side * 4 / 3)} (no [camera] size)": colour_image(
            0, rng, size=(side, round(side * 4 / 3))
        ),
        "OpenCV 320x240 (smallest mode covering 224)": colour_image(0, rng, size=(240, 320)),
    }
    preprocess = model._preprocess
    import cv2  # noqa: F401 (loaded, as the OpenCV camera has it: preprocess.py then uses it)

    for name, frame in frames.items():
        paired = _paired(lambda f=frame: preprocess(f), lambda: model.bottleneck(x), bench.repeats)
        rows.append(_ratio_row("7 camera", f"frame -> model input, {name}", paired,
                               "base invoke", 0.10))  # fmt: skip
    big = colour_image(0, rng, size=(480, 640))
    paired = _paired(lambda: preprocess(big), lambda: model.bottleneck(x), bench.repeats)
    rows.append(row("7 camera", "frame -> model input, 640x480 (a [camera] size set)",
                    f"{paired.measured_ms:.3f} ms", f"{paired.baseline_ms:.3f} ms base invoke",
                    paired.ratio))  # fmt: skip
    for label, spec in (("pooled 1280", POOLED), ("7x7x1280", SPATIAL)):
        model = bench.model(spec)
        frame = colour_image(1, rng, size=(side, round(side * 4 / 3)))
        name = model.classes[0]
        model.add_sample(frame, name)
        paired = _paired(lambda m=model, f=frame, n=name: m.add_sample(f, n),
                         lambda m=model, f=frame: m.predict(f), bench.repeats)  # fmt: skip
        rows.append(_ratio_row("7 camera", f"add_sample / predict, {label}", paired,
                               "predict", 1.2))  # fmt: skip
    return rows


def measure_metrics_cost(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """evaluate() (k-fold) and the open-set calibration at 1000 samples."""
    from tests.bench import POOLED, SPATIAL
    from tests.support.synthetic_images import colour_image

    rows = []
    for label, spec in (("7x7x1280", SPATIAL), ("pooled 1280", POOLED)):
        model = bench.model(spec)
        rng = np.random.default_rng(0)
        seeds = [model.bottleneck(colour_image(i % 4, rng)) for i in range(20)]
        for i in range(STORE_SAMPLES):
            jitter = seeds[i % 20] * np.float32(1 + 0.01 * (i % 7))
            model.add_sample_bottleneck(jitter, model.classes[i % 4])
        model.train(10)
        started = time.perf_counter()
        evaluation = model.evaluate()
        seconds = time.perf_counter() - started
        rows.append(
            row("8 metrics", f"{label}: evaluate() at {STORE_SAMPLES} samples", f"{seconds:.2f} s",
                evaluation.method, None)
        )  # fmt: skip
        started = time.perf_counter()
        model._calibration = None
        model.open_set()
        rows.append(
            row("8 metrics", f"{label}: open-set calibration at {STORE_SAMPLES} samples",
                f"{(time.perf_counter() - started) * 1e3:.0f} ms")
        )  # fmt: skip
    return rows
