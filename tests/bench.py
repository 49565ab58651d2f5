"""Benchmarks of the runtime model, printed as one table (``make bench``).

Each section is a function that takes the :class:`Bench` context and returns table rows; the
table is every section's rows in order. Add a section by writing such a function and appending
it to :data:`SECTIONS` (the daemon's end-to-end benchmark does). Timings are medians of repeated
runs, and every ratio compares against a baseline measured in the same run, interleaved with the
measurement so both see the same load on the machine.

Sections of issue 3:

1. ``predict()`` against the raw interpreter calls it wraps (base + inference, same threads).
2. One training step (train_head + optimizer, batch 20) against the same math in numpy (BLAS).
3. Time and samples to learn: 4 classes x 20 frames, epochs until the training loss is < 0.05.
4. Memory per stored sample, and peak RSS with a MobileNetV2 bundle and 1000 samples.

Bundles are MobileNetV2 at 224 px, alpha 1.0, with He-initialised random weights (no ImageNet
weights offline; see tests/support/bundles.py), converted once and cached under build/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from personalizer import TransferLearningModel
from personalizer.model.interpreter_set import HEAD_THREADS
from personalizer.model.interpreters import select_runtime
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.synthetic_images import colour_image

SPATIAL = BundleSpec(image_size=224, alpha=1.0, pooling="none")  # (7, 7, 1280) bottleneck
POOLED = BundleSpec(image_size=224, alpha=1.0, pooling="avg")  # (1280,) bottleneck
LOSS_GOAL = 0.05
MAX_EPOCHS = 500


@dataclass
class Row:
    """One line of the table; ``ratio``/``target``/``ok`` only where there is a baseline."""

    section: str
    name: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None


@dataclass
class Bench:
    """What every section needs: the runtime, thread count, repeats and cached bundles."""

    runtime: str = "auto"
    threads: int = 2
    repeats: int = 30
    _bundles: dict[BundleSpec, Path] = field(default_factory=dict)

    def bundle(self, spec: BundleSpec) -> Path:
        """The bundle folder for ``spec`` (converted on first use, in a subprocess)."""
        if spec not in self._bundles:
            self._bundles[spec] = build_bundle(spec)
        return self._bundles[spec]

    def model(self, spec: BundleSpec) -> TransferLearningModel:
        """A fresh model on ``spec``'s bundle with the benchmark's runtime and threads."""
        return TransferLearningModel(
            self.bundle(spec), runtime=self.runtime, num_threads=self.threads, seed=0
        )


Section = Callable[[Bench], list[Row]]


# --- timing helpers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Paired:
    """Medians (ms) of a measurement and its baseline, and the median of their round ratios."""

    measured_ms: float
    baseline_ms: float
    ratio: float


def _paired(
    measured: Callable[[], object],
    baseline: Callable[[], object],
    repeats: int,
    block: int = 5,
) -> Paired:
    """Time ``measured`` and ``baseline`` ``repeats`` times each, alternating in rounds.

    Each round runs a block of ``block`` calls of one, then of the other; the first call of a
    block is not counted, because the interpreter's worker threads have to wake up after the
    other one ran (alternating call by call would measure two thread pools fighting over the
    cores). The ratio is the median of the rounds' ratios, so load from elsewhere on the machine,
    which comes and goes, cancels out within a round.
    """
    rounds: list[tuple[float, float]] = []
    all_times: tuple[list[float], list[float]] = ([], [])
    while len(all_times[0]) < repeats:
        medians = []
        for fn, out in ((measured, all_times[0]), (baseline, all_times[1])):
            fn()
            times = []
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            out.extend(times)
            medians.append(statistics.median(times))
        rounds.append((medians[0], medians[1]))
    return Paired(
        statistics.median(all_times[0]) * 1e3,
        statistics.median(all_times[1]) * 1e3,
        statistics.median(a / b for a, b in rounds),
    )


def _ratio_row(section: str, name: str, paired: Paired, baseline_name: str, limit: float) -> Row:
    return Row(
        section,
        name,
        f"{paired.measured_ms:.3f} ms",
        f"{paired.baseline_ms:.3f} ms {baseline_name}",
        paired.ratio,
        f"<= {limit}",
        paired.ratio <= limit,
    )


# --- 1. predict() against the raw interpreters ---------------------------------------------------


BUNDLES = (("7x7x1280", SPATIAL), ("pooled 1280", POOLED))


def predict_latency(bench: Bench) -> list[Row]:
    """``predict()`` latency against the raw base + inference invokes, same threads."""
    return [row for label, spec in BUNDLES for row in _predict_rows(bench, label, spec)]


def _predict_rows(bench: Bench, label: str, spec: BundleSpec) -> list[Row]:
    model = bench.model(spec)
    rng = np.random.default_rng(0)
    for i in range(8):
        model.add_sample(colour_image(i % 4, rng), model.classes[i % 4])
    model.train(2)  # non-trivial parameters
    raw = _RawPredict(bench, model)
    x = rng.random(model.input_shape, dtype=np.float32)
    frame = colour_image(0, rng, size=(480, 640))
    as_input = _paired(lambda: model.predict(x), lambda: raw(x), bench.repeats)
    as_frame = _paired(lambda: model.predict(frame), lambda: raw(x), bench.repeats)
    return [
        _ratio_row("1 predict", f"predict() {label}, float input", as_input, "raw invokes", 1.05),
        Row("1 predict", f"predict() {label}, 640x480 uint8 frame (incl. crop+resize)",
            f"{as_frame.measured_ms:.3f} ms", f"{as_frame.baseline_ms:.3f} ms raw invokes",
            as_frame.ratio),
    ]  # fmt: skip


class _RawPredict:
    """The interpreter calls predict() wraps, written as a user of the plain TFLite API would."""

    def __init__(self, bench: Bench, model: TransferLearningModel) -> None:
        runtime = select_runtime(bench.runtime)
        bundle = model.bundle
        self.base = runtime.new_interpreter(bundle.model_bytes("bottleneck"), bench.threads)
        self.head = runtime.new_interpreter(bundle.model_bytes("inference"), HEAD_THREADS)
        self.base.allocate_tensors()
        self.head.allocate_tensors()
        base_sig = self.base.get_signature_runner()
        head_sig = self.head.get_signature_runner()
        self.image = base_sig.get_input_details()["image"]["index"]
        self.bottleneck = base_sig.get_output_details()["bottleneck"]["index"]
        head_in = head_sig.get_input_details()
        self.head_bottleneck = head_in["bottleneck"]["index"]
        self.probabilities = head_sig.get_output_details()["probabilities"]["index"]
        del base_sig, head_sig  # they hold the interpreters' internals; invoke() would refuse
        for i, p in enumerate(model.parameters()):
            self.head.set_tensor(head_in[f"param_{i}"]["index"], p)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.base.set_tensor(self.image, x)
        self.base.invoke()
        self.head.set_tensor(self.head_bottleneck, self.base.get_tensor(self.bottleneck))
        self.head.invoke()
        return self.head.get_tensor(self.probabilities)


# --- 2. one training step against numpy -----------------------------------------------------------


def train_step(bench: Bench) -> list[Row]:
    """One train_head + optimizer step (batch 20) against the same Adam step in numpy."""
    return [_train_step_row(bench, label, spec) for label, spec in BUNDLES]


def _train_step_row(bench: Bench, label: str, spec: BundleSpec) -> Row:
    model = bench.model(spec)
    rng = np.random.default_rng(0)
    labels = np.arange(20) % 4
    for label_index in labels:
        model.add_sample_bottleneck(
            rng.random(model.bottleneck_shape, dtype=np.float32), model.classes[label_index]
        )
    reference = _NumpyAdamStep(model, labels)
    # With 20 samples and batch 20, train(1) is exactly one step.
    paired = _paired(lambda: model.train(1), reference, bench.repeats)
    return _ratio_row("2 train step", f"train step {label}, batch 20", paired, "numpy", 1.5)


class _NumpyAdamStep:
    """The softmax head's forward, gradient and Adam update in float32 numpy."""

    def __init__(self, model: TransferLearningModel, labels: np.ndarray) -> None:
        snapshot = model.sample_snapshot()
        self.rows = snapshot.bottlenecks
        self.onehot = np.eye(len(model.classes), dtype=np.float32)[labels]
        self.params = [p.copy() for p in model.parameters()]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        hp = model.bundle.manifest.optimizer.hyperparameters
        self.lr, self.b1, self.b2, self.eps = (
            hp["learning_rate"], hp["beta1"], hp["beta2"], hp["eps"]
        )  # fmt: skip

    def __call__(self) -> float:
        x = np.stack(self.rows).reshape(len(self.rows), -1)  # the batch gather, as the runtime
        kernel, bias = self.params
        logits = x @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.mean(np.log(p[self.onehot > 0])))
        delta = (p - self.onehot) / len(x)
        grads = (x.T @ delta, delta.sum(axis=0))
        self.t += 1
        alpha = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        for i, g in enumerate(grads):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            self.params[i] = self.params[i] - alpha * self.m[i] / (np.sqrt(self.v[i]) + self.eps)
        return loss


# --- 3. time and samples to learn ---------------------------------------------------------------


def time_to_learn(bench: Bench) -> list[Row]:
    """4 classes x 20 frames: capture time, epochs and seconds until the loss is below 0.05."""
    rows = []
    for label, spec in BUNDLES:
        model = bench.model(spec)
        rng = np.random.default_rng(1)
        frames = [(c, colour_image(c, rng, size=(480, 640))) for c in range(4) for _ in range(20)]
        start = time.perf_counter()
        for c, frame in frames:
            model.add_sample(frame, model.classes[c])
        capture = time.perf_counter() - start
        losses: list[float] = []
        start = time.perf_counter()
        while len(losses) < MAX_EPOCHS and (not losses or losses[-1] >= LOSS_GOAL):
            losses.append(model.train(1))
        seconds = time.perf_counter() - start
        reached = losses[-1] < LOSS_GOAL
        rows.append(
            Row("3 learn", f"{label}: 80 samples (4x20), 640x480 frames -> samples",
                f"{capture:.2f} s", f"{capture / 80 * 1e3:.1f} ms/sample")
        )  # fmt: skip
        rows.append(
            Row("3 learn", f"{label}: epochs to loss < {LOSS_GOAL}",
                f"{len(losses)} epochs, {seconds:.2f} s" if reached
                else f"not in {MAX_EPOCHS} epochs ({losses[-1]:.3f})",
                f"first epoch loss {losses[0]:.3f}", ok=reached)
        )  # fmt: skip
    return rows


# --- 4. memory ----------------------------------------------------------------------------------


def memory(bench: Bench) -> list[Row]:
    """Memory per stored sample and peak RSS with 1000 samples, each in a fresh process."""
    rows = []
    for label, spec in BUNDLES:
        out = subprocess.run(
            [sys.executable, "-m", "tests.bench", "--memory-worker", str(bench.bundle(spec)),
             "--runtime", bench.runtime, "--threads", str(bench.threads)],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
        per_sample = result["per_sample_bytes"]
        rows.append(
            Row("4 memory", f"{label}: memory per stored sample", _size(per_sample),
                f"bottleneck {_size(result['bottleneck_bytes'])}",
                per_sample / result["bottleneck_bytes"])
        )  # fmt: skip
        # The Python API holds its samples in memory; the daemon reads them from its state
        # database, and its RSS is what section 5 holds to the 200 MiB target.
        peak = result["peak_rss"]
        rows.append(
            Row("4 memory", f"{label}: Python API peak RSS, 1000 samples in memory + train + save",
                _size(peak), f"model loaded {_size(result['rss_loaded'])}")
        )  # fmt: skip
    return rows


def _memory_worker(bundle: str, runtime: str, threads: int, count: int = 1000) -> None:
    """Load, capture 20 real frames, store ``count`` samples, train, save; print RSS as JSON."""
    model = TransferLearningModel(bundle, runtime=runtime, num_threads=threads, seed=0)
    rng = np.random.default_rng(0)
    for i in range(20):
        model.add_sample(colour_image(i % 4, rng, size=(480, 640)), model.classes[i % 4])
    rss_loaded = _rss()
    # The remaining samples are jittered copies: storing them costs what capturing them would,
    # without 980 more base-model runs.
    base = model.sample_snapshot().bottlenecks
    for i in range(count - 20):
        jitter = base[i % 20] * np.float32(1 + 0.01 * (i % 7))
        model.add_sample_bottleneck(jitter, model.classes[i % 4])
    rss_samples = _rss()
    model.train(1)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "state.db")
    result = {
        "rss_loaded": rss_loaded,
        "per_sample_bytes": (rss_samples - rss_loaded) / (count - 20),
        "bottleneck_bytes": base[0].nbytes,
        "peak_rss": _peak_rss(),
    }
    print(json.dumps(result))


def _peak_rss() -> int:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include the parent's before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


# --- table --------------------------------------------------------------------------------------


def daemon_end_to_end(bench: Bench) -> list[Row]:
    """Issue 4: the real daemon, frame in -> prediction published, vs the raw base model."""
    from tests.bench_daemon import measure_end_to_end

    return measure_end_to_end(bench, Row)


def web_live_view(bench: Bench) -> list[Row]:
    """Issue 14: inference fps with one page watching the live view, vs no page."""
    from tests.bench_daemon import measure_live_view

    return measure_live_view(bench, Row)


def sample_store(bench: Bench) -> list[Row]:
    """Issue 12: cmd/sample ack and bytes written per sample at 10, 100, 1000; daemon RSS."""
    from tests.bench_store import measure_sample_store

    return measure_sample_store(bench, Row)


def float16_samples(bench: Bench) -> list[Row]:
    """Issue 12: what keeping samples as float16 does to accuracy on real photos."""
    from tests.bench_store import measure_float16

    return measure_float16(bench, Row)


def camera_edge(bench: Bench) -> list[Row]:
    """Issue 9: frame -> model input against the base invoke; add_sample against predict."""
    from tests.bench_store import measure_camera_edge

    return measure_camera_edge(bench, Row)


def metrics_cost(bench: Bench) -> list[Row]:
    """Issue 13: the validation estimate and the open-set calibration at 1000 samples."""
    from tests.bench_store import measure_metrics_cost

    return measure_metrics_cost(bench, Row)


def stream_decode_cost(bench: Bench) -> list[Row]:
    """Issue 21: CPU per frame of 360p/720p/1080p H.264 over RTSP against a base invoke."""
    from tests.bench_stream import measure_decode_cost

    return measure_decode_cost(bench, Row)


def stream_frame_age(bench: Bench) -> list[Row]:
    """Issue 21: frames between the one classified and the newest the camera sent."""
    from tests.bench_stream import measure_frame_age

    return measure_frame_age(bench, Row)


def open_set_cost(bench: Bench) -> list[Row]:
    """Issue 19: the open-set test of one frame (16 classes) against the base model's invoke."""
    from personalizer.model.open_set import calibrate

    model = bench.model(SPATIAL)
    rng = np.random.default_rng(0)
    image = colour_image(0, rng)
    x = model._preprocess(image)
    frame = model.bottleneck(image)[None]  # as the interpreter gives it: float32, batch axis
    classes, shots = 16, 5
    samples = [
        (frame[0] * rng.uniform(0.5, 1.5, size=frame.shape[1:])).astype(np.float16)
        for _ in range(classes * shots)
    ]
    labels = np.repeat(np.arange(classes), shots)
    sums = np.zeros((classes, frame.size))
    for sample, label in zip(samples, labels, strict=True):
        sums[label] += sample.reshape(-1)
    calibration = calibrate(samples, labels, sums, np.bincount(labels), shape=frame.shape[1:])
    paired = _paired(lambda: calibration.is_known(frame), lambda: model._bottleneck_of(x), 30)
    return [
        _ratio_row(
            "19 open set",
            "7x7x1280: open-set test of a frame, 16 classes",
            paired,
            "base invoke",
            0.02,
        )
    ]


def fleet_sharing(bench: Bench) -> list[Row]:
    """Issue 23: 500 samples reaching a fresh board of a fleet; bytes on the wire; the broker."""
    from tests.bench_fleet import measure_fleet

    return measure_fleet(bench, Row)


SECTIONS: list[Section] = [
    predict_latency,
    train_step,
    time_to_learn,
    memory,
    daemon_end_to_end,
    web_live_view,
    sample_store,
    float16_samples,
    camera_edge,
    metrics_cost,
    stream_decode_cost,
    stream_frame_age,
    open_set_cost,
    fleet_sharing,
]


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    header = ("section", "benchmark", "measured", "baseline", "ratio", "target", "ok")
    cells = [header] + [
        (
            r.section,
            r.name,
            r.value,
            r.baseline,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            "" if r.ok is None else ("yes" if r.ok else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sections (all, or those named with --only) and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runtime", default="auto", help="auto, tflite_runtime, ai_edge_litert")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--only", nargs="*", help="section function names to run")
    parser.add_argument("--memory-worker", metavar="BUNDLE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        _memory_worker(args.memory_worker, args.runtime, args.threads)
        return 0
    bench = Bench(runtime=args.runtime, threads=args.threads, repeats=args.repeats)
    sections = [s for s in SECTIONS if not args.only or s.__name__ in args.only]
    rows: list[Row] = []
    for section in sections:
        print(f"running {section.__name__} ...", file=sys.stderr, flush=True)
        rows += section(bench)
    runtime = select_runtime(args.runtime)
    print(f"\nruntime {runtime.name} {runtime.version}, {args.threads} base-model threads, "
          f"{os.cpu_count()} cores, medians of {args.repeats} runs\n")  # fmt: skip
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
