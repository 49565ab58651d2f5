"""The daemon's end-to-end benchmark (a section of `make bench`): frame in -> prediction out.

The real daemon (`personalizer run`, a subprocess) runs a replay camera of real photos against a
private mosquitto, with every frame classified and published (inference rate 0, agree_frames 1,
publish_interval 0). A subscriber in this process records each prediction's arrival; latency is
arrival time minus the frame's capture time (`ts` in the payload), and the frame rate is
predictions per second. Both are compared with the raw base-model interpreter (bottleneck.tflite
alone, same thread count, fed the same photos) measured in the same run: target >= 0.95 of its
rate while idle, >= 0.85 while the daemon trains (default pacing, min_epoch_interval 0.2 s).

This machine's cores are shared, so the two are measured in alternating rounds: the daemon is
frozen (SIGSTOP) while the raw interpreter runs, then thawed (SIGCONT) for its own window; each
round gives a ratio, and the table shows the median. Frames caught by a freeze are not counted.

The web page's section (:func:`measure_live_view`) runs the daemon with `[web]` on and compares
its inference rate while one page watches the live view with its rate while none does, in
alternating windows of the same run; target >= 0.95.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import tempfile
import threading
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
                # No width/height: replay scales each photo so that its shorter side is the
                # model's input, the smallest frame that covers it (as the USB camera picks its
                # mode; the Pi camera delivers the model's size exactly), so preparing the input
                # is a centre slice. The replay rate is far above what the model can do, so
                # frames never wait.
                "camera": {"source": "replay", "path": str(frames), "fps": 1000.0},
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
        ("idle", idle, 0.95),
        (f"while training ({samples} samples, {epochs} epochs)", training, 0.85),
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


# --- the web page's live view (issue 14) ----------------------------------------------------

VIEW_ROUNDS = 16  # windows with a page; each is compared with the windows without on both sides
VIEW_WINDOW = 2.0  # seconds per window
FRAME_PERIOD = 0.1  # the page asks for a frame at most every 100 ms (app.js FRAME_PERIOD)


class PageViewer:
    """The load one open page puts on the daemon, made as the page's script makes it: the
    event stream, and the next live-view frame each time the previous one arrived (at most
    every 100 ms). Stopping it is closing the tab."""

    def __init__(self, host: str, port: int, password: str) -> None:
        import http.client
        import urllib.parse

        self.host, self.port = host, port
        login = http.client.HTTPConnection(host, port, timeout=10)
        login.request("POST", "/login", urllib.parse.urlencode({"password": password}),
                      {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        answer = login.getresponse()
        answer.read()
        login.close()
        if answer.status != 303:
            raise RuntimeError(f"the bench could not log in to the page: {answer.status}")
        self.cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]
        self.frames = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: list[Any] = []

    def _connection(self) -> Any:
        import http.client

        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def _frames(self) -> None:
        connection, last = self._connection(), 0
        while not self._stop.is_set():
            started = time.monotonic()
            connection.request("GET", f"/api/frame?after={last}", headers={"Cookie": self.cookie})
            answer = connection.getresponse()
            answer.read()
            if answer.status == 200:
                last = int(answer.getheader("X-Frame", "0"))
                self.frames += 1
            self._stop.wait(max(0.0, FRAME_PERIOD - (time.monotonic() - started)))
        connection.close()

    def _events(self) -> None:
        connection = self._connection()
        self._streams.append(connection)
        connection.request("GET", "/api/events", headers={"Cookie": self.cookie})
        answer = connection.getresponse()
        try:
            while not self._stop.is_set() and answer.fp.readline():
                pass
        except (OSError, ValueError):  # closed by stop()
            pass

    def start(self) -> None:
        """Open the page."""
        self._stop.clear()
        self._threads = [threading.Thread(target=self._frames, daemon=True),
                         threading.Thread(target=self._events, daemon=True)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Close the page."""
        self._stop.set()
        for connection in self._streams:
            if connection.sock is not None:
                connection.sock.shutdown(socket.SHUT_RDWR)
        self._streams.clear()
        for thread in self._threads:
            thread.join(5)

    def encoded(self) -> int:
        """Frames the daemon encoded for the live view since it started."""
        connection = self._connection()
        connection.request("GET", "/api/health", headers={"Cookie": self.cookie})
        encoded = json.loads(connection.getresponse().read())["stream"]["encoded"]
        connection.close()
        return int(encoded)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process `pid` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _Window:
    """One window: frames classified per second, and the daemon's CPU time per frame."""

    fps: float
    cpu_per_frame: float  # seconds
    frames: int
    cpu: float  # seconds


def _window(arrivals: _Arrivals, pid: int) -> _Window:
    arrivals.items.clear()
    cpu = _cpu_seconds(pid)
    arrivals.recording = True
    time.sleep(VIEW_WINDOW)
    arrivals.recording = False
    cpu = _cpu_seconds(pid) - cpu
    items = list(arrivals.items)
    if len(items) < 2:
        raise RuntimeError(f"only {len(items)} predictions in {VIEW_WINDOW} s: is it running?")
    fps = (len(items) - 1) / (items[-1][0] - items[0][0])
    return _Window(fps, cpu / len(items), len(items), cpu)


def _neighbour_ratios(alone: list[float], watched: list[float]) -> list[float]:
    """Each window with a page against the mean of the windows without on both sides."""
    return [w / ((alone[i] + alone[i + 1]) / 2) for i, w in enumerate(watched)]


def measure_live_view(bench: Any, row: Callable[..., Any]) -> list[Any]:
    """Inference fps with one page watching the live view against none, in alternating
    windows of the same daemon; the camera delivers 640x480 frames as fast as the daemon
    takes them, so each live-view frame is a full-size encode."""
    from tests.support.broker import free_port

    bundle = bench.bundle(SPEC)
    threads = max(1, min(4, (os.cpu_count() or 1) - 1))
    password = "bench-page-password"
    with tempfile.TemporaryDirectory(prefix="bench-web-") as scratch, Broker() as broker:
        work = Path(scratch)
        frames = photos.replay_folder(work / "frames", list(CLASSES))
        (work / "web_password").write_text(password)
        port = free_port()
        config = write_config(
            work / "bench.toml",
            {
                "model": {"bundle": str(bundle), "classes": list(CLASSES), "runtime": bench.runtime,
                          "num_threads": threads},
                "camera": {"source": "replay", "path": str(frames), "width": 640, "height": 480,
                           "fps": 1000.0},
                "inference": {"rate": 0.0, "agree_frames": 1, "min_confidence": 0.0,
                              "publish_interval": 0.0},
                "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": ROOT},
                "state": {"dir": str(work / "state")},
                "web": {"enabled": True, "listen": f"127.0.0.1:{port}",
                        "password_file": str(work / "web_password")},
            },
        )  # fmt: skip
        arrivals = _Arrivals(f"{ROOT}/prediction")
        with MqttWatch(broker.host, broker.port, ROOT) as watch:
            watch.on_message = arrivals
            daemon = DaemonProcess(config).start()
            try:
                watch.wait_for("availability", lambda m: m.text == "online", timeout=120)
                watch.wait_for("prediction", timeout=60)
                viewer = PageViewer("127.0.0.1", port, password)
                alone, watched, unwatched_encodes, shown = [], [], 0, []
                time.sleep(SETTLE)
                # Without, with, without, ..., without: other load on the machine drifts, so
                # each window with a page is compared with the mean of its two neighbours.
                for index in range(2 * VIEW_ROUNDS + 1):
                    if index % 2 == 0:
                        before = viewer.encoded()
                        alone.append(_window(arrivals, daemon.pid))
                        unwatched_encodes += viewer.encoded() - before
                        continue
                    viewer.start()
                    time.sleep(SETTLE)
                    seen = viewer.frames
                    watched.append(_window(arrivals, daemon.pid))
                    shown.append(viewer.frames - seen)
                    viewer.stop()
                    time.sleep(SETTLE)
            finally:
                code = daemon.terminate()[0] if daemon.alive() else daemon.wait(5)
            if code != 0:
                raise RuntimeError(f"the daemon exited with {code}:\n{daemon.log()[-2000:]}")
    ratio = statistics.median(_neighbour_ratios([w.fps for w in alone], [w.fps for w in watched]))
    # What the page costs the daemon in CPU time, which other load on the machine blurs less:
    # per classified frame (the frame rate a board with every core busy would keep), and per
    # live-view frame (the daemon's CPU beyond what its classified frames cost without a page).
    cpu_ratio = statistics.median(
        _neighbour_ratios(
            [1 / w.cpu_per_frame for w in alone], [1 / w.cpu_per_frame for w in watched]
        )
    )
    cpu_alone = statistics.median(w.cpu_per_frame for w in alone) * 1e3
    cpu_watched = statistics.median(w.cpu_per_frame for w in watched) * 1e3
    per_view = statistics.median(
        (w.cpu - w.frames * (alone[i].cpu_per_frame + alone[i + 1].cpu_per_frame) / 2)
        / max(1, shown[i])
        for i, w in enumerate(watched)
    )
    view_rate = statistics.median(shown) / VIEW_WINDOW
    return [
        row(
            "web page",
            "inference with one page watching the live view (640x480 frames)",
            f"{statistics.median(w.fps for w in watched):.1f} fps",
            f"{statistics.median(w.fps for w in alone):.1f} fps with no page",
            ratio,
            ">= 0.95",
            ratio >= 0.95,
        ),
        row(
            "web page",
            "daemon CPU per classified frame, one page watching",
            f"{cpu_watched:.1f} ms",
            f"{cpu_alone:.1f} ms with no page",
            cpu_ratio,
        ),
        row(
            "web page",
            "daemon CPU per live-view frame (encode, HTTP, events)",
            f"{per_view * 1e3:.1f} ms",
            f"{view_rate:.1f} live-view fps (at most 10): {per_view * view_rate:.1%} of a core",
        ),
        row(
            "web page",
            "frames encoded while no page was open",
            str(unwatched_encodes),
            f"{VIEW_ROUNDS + 1} windows of {VIEW_WINDOW:g} s",
            None,
            "0",
            unwatched_encodes == 0,
        ),
    ]
