"""Network cameras in `make bench`: H.264 decode cost, and the frame age at classification.

Decode cost: H.264 clips of 640x360, 1280x720 and 1920x1080 (a slow pan over a real photo with
sensor-like noise, 15 fps, a key frame every 2 s, no B-frames, at bit rates cameras use: 0.8,
2.5 and 5 Mbit/s; encoded once by GStreamer's x264 and cached under build/bench-stream/) are
served over RTSP by GStreamer's server (tests/support/rtsp_serve.py --clip: no live encoder
competes for the cores) and read by the daemon's StreamSource taking every frame. The cost is
this process's CPU time (reader thread, decode, RGB conversion) per frame, as a ratio of one
base-model invoke (MobileNetV2 224 px, the daemon bench's bundle) measured in the same run.
OpenCV's FFmpeg backend reads the same streams for comparison (BGR, then copied to RGB as its
camera source does).

Frame age: the server sends 640x360 H.264 frames that carry their number (coded squares) at
15 fps; the daemon's own parts run as in the service: StreamSource under the CameraSupervisor
(its thread) into a LatestFrame, and a frame loop that classifies every new frame with the
model's predict(). For each classification, the frame's number is read from its pixels and
compared with the newest frame the server had sent when the classification started: the
target is never more than one frame behind.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.support import photos
from tests.support.bundles import BundleSpec
from tests.support.stream_servers import RtspServer, coded_frames, read_code, write_frames

SPEC = BundleSpec(image_size=224, alpha=1.0, pooling="avg")  # as bench_daemon's
SIZES = ((640, 360, 800), (1280, 720, 2500), (1920, 1080, 5000))  # width, height, kbit/s
FPS = 15.0
CLIP_FRAMES = 150  # 10 s
SOURCE_FRAMES = 50  # distinct pictures of the pan (the clip plays them forth and back)
MEASURE_SECONDS = 6.0
CACHE = Path(__file__).resolve().parents[1] / "build" / "bench-stream"
AGE_FRAMES = 64  # coded frames the age server cycles through
AGE_CLASSIFICATIONS = 150


def clip(width: int, height: int, kbps: int) -> Path:
    """The cached H.264 clip of this size (made on first use)."""
    target = CACHE / f"pan-{width}x{height}-{kbps}k.mp4"
    if target.exists():
        return target
    import subprocess

    from tests.support.stream_servers import RTSP_SCRIPT, SYSTEM_PYTHON

    folder = CACHE / f"pan-{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(_pan(width, height)):
        Image.fromarray(frame).save(folder / f"{index:04d}.jpg", quality=95)
    subprocess.run(
        [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--frames", str(folder), "--encode", str(target),
         "--bitrate", str(kbps), "--fps", str(FPS), "--count", str(CLIP_FRAMES)],
        check=True, timeout=600,
    )  # fmt: skip
    return target


def _pan(width: int, height: int) -> list[np.ndarray]:
    """A slow pan over the astronaut photo, forth and back, with noise like a camera's."""
    with Image.open(photos.photo_path("astronaut")) as picture:
        scale = 1.25 * max(width / picture.width, height / picture.height)
        big = np.asarray(
            picture.convert("RGB").resize(
                (round(picture.width * scale), round(picture.height * scale)),
                Image.Resampling.BICUBIC,
            )
        )
    rng = np.random.default_rng(0)
    frames = []
    steps = [*range(SOURCE_FRAMES), *range(SOURCE_FRAMES - 1, 0, -1)]
    for step in steps[:CLIP_FRAMES]:
        x = (big.shape[1] - width) * step // SOURCE_FRAMES
        y = (big.shape[0] - height) * step // (2 * SOURCE_FRAMES)
        noisy = big[y : y + height, x : x + width].astype(np.int16)
        noisy += rng.normal(0, 3, noisy.shape).astype(np.int16)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def _cpu_per_frame(read: Callable[[], object], seconds: float) -> tuple[float, int]:
    """CPU ms of this process per ``read()`` over ``seconds`` (the first frames not counted)."""
    for _ in range(3):
        read()
    frames, cpu, wall = 0, time.process_time(), time.monotonic()
    while time.monotonic() - wall < seconds:
        read()
        frames += 1
    return (time.process_time() - cpu) * 1e3 / frames, frames


def _pyav_cost(url: str) -> tuple[float, int]:
    from personalizer.camera.stream import StreamSource

    source = StreamSource(url, fps=1000.0)
    source.open()
    try:
        return _cpu_per_frame(source.read, MEASURE_SECONDS)
    finally:
        source.close()


def _opencv_cost(url: str) -> tuple[float, int]:
    import cv2

    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)

    def read() -> np.ndarray:
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError("OpenCV lost the stream")
        return np.ascontiguousarray(frame[..., ::-1])

    try:
        return _cpu_per_frame(read, MEASURE_SECONDS)
    finally:
        capture.release()


def _base_invoke_ms(bench: Any) -> float:
    """CPU ms of one base-model invoke (the bench's threads, all counted), as the decode cost
    is counted: CPU time, unlike wall time, hardly changes with load from elsewhere."""
    from tests.bench_daemon import RawBase

    raw = RawBase(bench.bundle(SPEC), bench.runtime, bench.threads, SPEC.image_size)
    rounds = []
    for _ in range(5):
        cpu, wall = time.process_time(), time.perf_counter()
        invokes = raw.rate(1.0) * (time.perf_counter() - wall)
        rounds.append((time.process_time() - cpu) * 1e3 / invokes)
    return statistics.median(rounds)


def measure_decode_cost(bench: Any, row: type) -> list[Any]:
    """Rows: CPU per decoded frame of each H.264 size, PyAV and OpenCV, against a base invoke."""
    rows = []
    clips = [(width, height, kbps, clip(width, height, kbps)) for width, height, kbps in SIZES]
    # Once, before any stream: OpenCV's and FFmpeg's worker threads, once started, would count.
    invoke = _base_invoke_ms(bench)
    for width, height, kbps, path in clips:
        for decoder, cost in (("PyAV (StreamSource)", _pyav_cost), ("OpenCV FFmpeg", _opencv_cost)):
            with RtspServer(None, clip=path, log=CACHE / "server.log") as server:
                per_frame, frames = cost(server.url)
            rows.append(
                row("stream", f"H.264 {width}x{height} {kbps} kbit/s over RTSP, {decoder}: "
                    f"CPU per frame ({frames} frames)", f"{per_frame:.2f} ms",
                    f"{invoke:.2f} ms CPU base invoke", per_frame / invoke)
            )  # fmt: skip
    return rows


def measure_frame_age(bench: Any, row: type) -> list[Any]:
    """Rows: how many frames behind the server's newest the classified frame is."""
    from personalizer import TransferLearningModel
    from personalizer.camera import LatestFrame
    from personalizer.camera.stream import StreamSource
    from personalizer.camera.supervisor import CameraSupervisor

    model = TransferLearningModel(
        bench.bundle(SPEC), runtime=bench.runtime, num_threads=bench.threads, seed=0
    )
    folder = write_frames(CACHE / "coded", coded_frames(AGE_FRAMES, ["cat", "coffee", "rocket"]))
    behind: list[int] = []
    ages: list[float] = []
    with RtspServer(folder, codec="h264", fps=FPS, log=CACHE / "server.log") as server:
        source = StreamSource(server.url, fps=30.0)  # above the stream's rate: every frame
        latest = LatestFrame()
        stop = threading.Event()
        supervisor = CameraSupervisor(source, latest, lambda status: None, stop, 30.0)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        try:
            last = 0
            while len(behind) < AGE_CLASSIFICATIONS:
                frame = latest.wait_newer(last, timeout=10.0)
                if frame is None:
                    raise RuntimeError(f"no frames: {supervisor.status}")
                started = time.time()
                last = frame.number
                code = read_code(frame.image, AGE_FRAMES)
                model.predict(frame.image)
                sent = [item for item in server.sent.items() if item[1] <= started]
                shown = [item for item in sent if item[2] == code]
                if not sent or not shown:
                    continue
                behind.append(sent[-1][0] - shown[-1][0])
                ages.append((started - shown[-1][1]) * 1e3)
        finally:
            stop.set()
            source.close()
            thread.join(10)
    worst = max(behind)
    return [
        row("stream", f"frame age at classification, 640x360 H.264 {FPS:g} fps, every new frame "
            f"classified ({len(behind)}): frames behind the newest sent (max / p95)",
            f"{worst} / {_p95(behind):.0f}", f"{sum(b <= 1 for b in behind)}/{len(behind)} <= 1",
            target="max <= 1", ok=worst <= 1),
        row("stream", "frame age at classification: ms since the server sent it (median / p95)",
            f"{statistics.median(ages):.0f} / {_p95(ages):.0f} ms",
            f"frame period {1e3 / FPS:.0f} ms"),
    ]  # fmt: skip


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
