"""Real network cameras for the tests: an RTSP server (GStreamer's) and an HTTP MJPEG server.

Both serve real photos (tests/support/photos.py) on a loopback port, optionally behind a user
name and password, and record when each frame went out (``sent``) so a test can tell how old
the frame a client shows is. Both can be stopped and started again on the same port, as a
camera that reboots.

- :class:`RtspServer` runs tests/support/rtsp_serve.py with the system Python, which has
  Debian's GStreamer bindings (python3-gi, gir1.2-gst-rtsp-server-1.0; installed by
  scripts/ensure-system-packages.sh).
- :class:`MjpegServer` is Python's http.server in a thread of the test process, sending
  ``multipart/x-mixed-replace`` as IP cameras do (Basic authentication).
"""

from __future__ import annotations

import base64
import io
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image

from tests.support import photos

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = Path(__file__).with_name("rtsp_serve.py")
PACKAGES_HINT = (
    "the RTSP tests need GStreamer's RTSP server for the system Python: run "
    "scripts/ensure-system-packages.sh as root (apt-get install python3-gi "
    "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly)"
)


def photo_jpegs(names: list[str], size: tuple[int, int] = (640, 360)) -> list[bytes]:
    """JPEG files of the photos ``names``, each fitted into ``size`` (aspect kept, centred on a
    grey frame of exactly that size, as a camera's wide view would show the object)."""
    frames = []
    for name in names:
        picture = Image.fromarray(photos.photo(name))
        picture.thumbnail(size, Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", size, (128, 128, 128))
        canvas.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2))
        buffer = io.BytesIO()
        canvas.save(buffer, format="JPEG", quality=90)
        frames.append(buffer.getvalue())
    return frames


BLOCK = 24  # pixels per bit of a frame's code: survives JPEG and H.264 at any quality used here


def coded_frames(
    count: int, names: list[str], size: tuple[int, int] = (640, 360), quality: int = 90
) -> list[bytes]:
    """``count`` JPEG frames, frame i showing photo ``names[i % len(names)]`` with i written in
    its top-left corner as a row of black and white squares (:func:`read_code` reads it back),
    so a test knows exactly which frame a client got."""
    pictures = [Image.open(io.BytesIO(data)) for data in photo_jpegs(names, size)]
    frames = []
    for index in range(count):
        canvas = pictures[index % len(pictures)].convert("RGB")
        for bit in range(code_bits(count)):
            shade = 255 if index >> bit & 1 else 0
            left = BLOCK * (bit + 1)
            canvas.paste((shade,) * 3, (left, BLOCK, left + BLOCK, 2 * BLOCK))
        buffer = io.BytesIO()
        canvas.save(buffer, format="JPEG", quality=quality)
        frames.append(buffer.getvalue())
    return frames


def code_bits(count: int) -> int:
    """Bits in the code of ``count`` frames."""
    return max(1, (count - 1).bit_length())


def read_code(image: np.ndarray, count: int) -> int:
    """The number :func:`coded_frames` wrote into ``image`` (HxWx3 RGB, at the size it was
    made), read from the middle of each square."""
    code = 0
    quarter = BLOCK // 4
    for bit in range(code_bits(count)):
        left = BLOCK * (bit + 1)
        middle = image[
            BLOCK + quarter : 2 * BLOCK - quarter, left + quarter : left + BLOCK - quarter
        ]
        if middle.mean() > 128:
            code |= 1 << bit
    return code


def write_frames(folder: Path, frames: list[bytes]) -> Path:
    """``frames`` as numbered JPEG files in ``folder`` (what rtsp_serve.py plays)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(frames):
        (folder / f"{index:04d}.jpg").write_bytes(data)
    return folder


class SentFrames:
    """What each frame that went out showed and when: ``(number, wall time, position)``, where
    position is the frame's index in the server's list of pictures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, float, int]] = []

    def add(self, number: int, when: float, position: int) -> None:
        """Record frame ``number`` (picture ``position``) sent at ``when`` (time.time())."""
        with self._lock:
            self._items.append((number, when, position))

    def items(self) -> list[tuple[int, float, int]]:
        """Every frame sent so far, oldest first."""
        with self._lock:
            return list(self._items)

    def on_air(self, when: float) -> tuple[int, float, int] | None:
        """The last frame sent at or before ``when``, or None."""
        with self._lock:
            before = [item for item in self._items if item[1] <= when]
        return before[-1] if before else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# --- RTSP ---------------------------------------------------------------------------------------


def rtsp_server_problem() -> str | None:
    """Why the RTSP server cannot run here (what to install), or None."""
    check = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return None if check.returncode == 0 else f"{PACKAGES_HINT}\n{check.stderr[-500:]}"


class RtspServer:
    """gst-rtsp-server in a subprocess: ``rtsp://127.0.0.1:PORT/camera``."""

    def __init__(
        self,
        frames: Path | None,
        *,
        codec: str = "mjpeg",
        fps: float = 10.0,
        user: str = "",
        password: str = "",
        auth: str = "basic",
        transport: str = "any",
        clip: Path | None = None,
        log: Path | None = None,
    ) -> None:
        """Serve the JPEG files of ``frames`` (or the H.264 MP4 ``clip``); ``transport`` is
        what the server allows ("tcp", "udp" or "any")."""
        self.arguments = ["--codec", codec, "--fps", str(fps), "--transport", transport]
        if clip is not None:
            self.arguments += ["--clip", str(clip)]
        else:
            self.arguments += ["--frames", str(frames)]
        if user:
            self.arguments += ["--user", user, "--password", password, "--auth", auth]
        self.log = log
        self.port = 0
        self.sent = SentFrames()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stream's URL, without credentials."""
        return f"rtsp://127.0.0.1:{self.port}/camera"

    def start(self, timeout: float = 30.0) -> Self:
        """Start serving (on the port of the previous run, if any); returns once listening."""
        problem = rtsp_server_problem()
        if problem:
            raise RuntimeError(problem)
        stderr = self.log.open("a") if self.log is not None else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--port", str(self.port), *self.arguments],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(self._process, ready), daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError(f"the RTSP server did not start (log: {self.log})")
        return self

    def _read(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            word, _, rest = line.partition(" ")
            if word == "ready":
                self.port = int(rest)
                ready.set()
            elif word == "frame":
                number, when, position = rest.split()
                self.sent.add(int(number), float(when), int(position))

    def stop(self) -> None:
        """Stop serving (clients see the connection drop)."""
        process, self._process = self._process, None
        reader, self._reader = self._reader, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if reader is not None:
            reader.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- HTTP MJPEG ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MjpegServer:
    """An HTTP MJPEG camera: ``http://127.0.0.1:PORT/video``, Basic auth when a user is set."""

    BOUNDARY = "camera-frame"

    def __init__(
        self, frames: list[bytes], *, fps: float = 10.0, user: str = "", password: str = ""
    ) -> None:
        self.frames = frames
        self.fps = fps
        self.credentials = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else ""
        )
        self.port = 0
        self.sent = SentFrames()
        self.refused = 0  # requests answered 401
        self._count = 0
        self._stop = threading.Event()
        self._sending = threading.Event()  # cleared: connections stay open, nothing is sent
        self._sending.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stream's URL, without credentials."""
        return f"http://127.0.0.1:{self.port}/video"

    def start(self) -> Self:
        """Start serving (on the port of the previous run, if any)."""
        self._stop.clear()
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every open stream (clients see the connection close)."""
        self._stop.set()
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def stall(self) -> None:
        """Keep the connections open but send nothing (a camera that hangs)."""
        self._sending.clear()

    def resume(self) -> None:
        """Send frames again after :meth:`stall`."""
        self._sending.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_frame(self) -> bytes:
        position = self._count % len(self.frames)
        self._count += 1
        self.sent.add(self._count, time.time(), position)
        return self.frames[position]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the stream ends when the connection does

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep the test output clean

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if camera.credentials and self.headers.get("Authorization") != camera.credentials:
                    camera.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/video":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header(
                    "Content-Type", f"multipart/x-mixed-replace; boundary={camera.BOUNDARY}"
                )
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                period = 1.0 / camera.fps
                due = time.monotonic()
                try:
                    while not camera._stop.is_set():
                        if not camera._sending.is_set():
                            camera._stop.wait(0.05)
                            due = time.monotonic()
                            continue
                        data = camera._next_frame()
                        self.wfile.write(
                            f"--{camera.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        due += period
                        camera._stop.wait(max(0.0, due - time.monotonic()))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away

        return Handler


__all__ = [
    "MjpegServer",
    "RtspServer",
    "SentFrames",
    "code_bits",
    "coded_frames",
    "photo_jpegs",
    "read_code",
    "rtsp_server_problem",
    "write_frames",
]
