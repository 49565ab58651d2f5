"""Network cameras: RTSP (H.264, MJPEG) and HTTP(S) MJPEG streams, decoded by PyAV.

One reader thread per open stream demuxes and decodes every frame as it arrives and keeps only
the newest one (an H.264 decoder must see every frame; a stream that nobody drains piles up in
socket buffers and its delay grows without bound). :meth:`StreamSource.read` hands out the
newest decoded frame, never a queue of old ones, at most ``fps`` times a second, and converts
only that one to RGB, so frames nobody takes cost their decode and nothing more. When the
stream fails (the camera drops the connection, stops sending for ``read_timeout`` seconds, or
refuses the login) the reader ends and ``read()`` raises :class:`CameraError` with a sentence
that says what to check; the :class:`CameraSupervisor` reports it in the status and reopens the
stream with backoff.

The decoder: PyAV (FFmpeg's libraries as a Python package), chosen over OpenCV's FFmpeg backend
(``cv2.VideoCapture(url, cv2.CAP_FFMPEG)``) on these grounds (figures: tests/bench_stream.py
and README "Network cameras"):

- errors: PyAV raises FFmpeg's errors as exceptions: a wrong password is
  ``HTTPUnauthorizedError`` for HTTP *and* RTSP, a wrong path ``HTTPNotFoundError``, a camera
  that is off ``ConnectionRefusedError``. OpenCV says only ``isOpened() == False`` and prints the
  reason to stderr, where the daemon cannot read it; a clear message would have needed a second
  RTSP/HTTP client (with Digest authentication) just to ask the camera why.
- control: FFmpeg options per stream (``rtsp_transport``, probing limits) and an open and a read
  timeout per stream; OpenCV takes options from one process-wide environment variable
  (``OPENCV_FFMPEG_CAPTURE_OPTIONS``).
- cost: the same FFmpeg H.264 decoder, but PyAV converts to RGB directly, and only the frames
  taken (OpenCV converts every frame to BGR, which its camera source then copies to RGB): CPU
  per frame over RTSP, decode and RGB, 2.6 / 7.6 / 14.7 ms for 360p / 720p / 1080p against
  OpenCV's 4.5 / 16.7 / 29.6 ms (`make bench`, x86). PyAV releases the GIL while it waits,
  demuxes, decodes and converts, so the reader thread does not slow the daemon's Python
  threads.
- wheels: ``av`` has aarch64 wheels for CPython 3.11 and 3.13 (av 18.1.0, cp311-abi3,
  manylinux_2_28: 33.6 MB; av 14.2.0 is the last for manylinux2014). It is an optional extra
  (``tflite-personalizer[stream]``), imported only by this source, so boards without network
  cameras do not carry it; a board with only network cameras needs no OpenCV (a larger wheel).
"""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np
from pydantic import SecretStr

from ..config.values import PYAV_INSTALL
from ..redaction import redact_url
from .source import CameraError, Pacer
from .stream_errors import StreamContext, explain

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0  # seconds for the camera to answer and the first frames to be probed
READ_TIMEOUT = 5.0  # seconds without data before the stream counts as stalled
# Probing: enough to find the stream's parameters (RTSP's SDP names them; an MJPEG stream's
# first JPEG does), short enough that a reconnect shows frames within a second.
PROBE_OPTIONS = {"probesize": "500000", "analyzeduration": "1000000", "fflags": "nobuffer"}


class StreamReader:
    """The thread that decodes one open stream and keeps only its newest frame.

    ``newest()`` is called from the camera thread; everything else happens in the reader's own
    thread, which also closes the container (PyAV containers are not to be closed from another
    thread while they are read).
    """

    def __init__(self, container: Any, stream: Any, describe_error: Any) -> None:
        self._container = container
        self._stream = stream
        self._describe_error = describe_error
        self._condition = threading.Condition()
        self._frame: Any = None  # the newest av.VideoFrame (still in the decoder's format)
        self._number = 0
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-reader", daemon=True)

    def start(self) -> None:
        """Start decoding."""
        self._thread.start()

    def _run(self) -> None:
        error = "the camera ended the stream"
        try:
            for frame in self._container.decode(self._stream):
                if frame.is_corrupt:
                    # Lost packets (UDP) or a stream joined mid-way: a broken picture must not
                    # be classified. A stream that stays broken ends in the read timeout.
                    continue
                with self._condition:
                    self._frame = frame
                    self._number += 1
                    self._condition.notify_all()
                if self._stop.is_set():
                    error = "the stream was closed"
                    break
        except Exception as exc:  # PyAV's errors, as they are; the caller words them
            error = self._describe_error(exc)
        finally:
            try:
                self._container.close()
            except Exception:  # closing a broken connection must not hide why it broke
                log.debug("closing the stream failed", exc_info=True)
            with self._condition:
                self._error = error
                self._condition.notify_all()

    def newest(self, after: int, timeout: float) -> tuple[int, Any]:
        """The newest frame numbered above ``after`` as (number, av.VideoFrame), waiting up to
        ``timeout`` s; CameraError once the stream has failed or nothing came in time."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._number > after or self._error is not None, timeout
            )
            if self._number > after:
                return self._number, self._frame
            if self._error is not None:
                raise CameraError(self._error)
        raise CameraError(f"no frame for {timeout:.0f} s: the stream stalled")

    def stop(self, wait: float) -> None:
        """Ask the thread to end (it does at the next frame, or when its read times out) and
        wait up to ``wait`` s for it, so the camera's connection is closed before a new one."""
        self._stop.set()
        with self._condition:
            if self._error is None:
                self._error = "the stream was closed"
            self._condition.notify_all()
        self._thread.join(wait)


class StreamSource:
    """An RTSP or HTTP(S) MJPEG camera: ``read()`` gives its newest frame, RGB."""

    def __init__(
        self,
        url: str,
        *,
        fps: float,
        transport: str = "tcp",
        username: str = "",
        password: SecretStr | None = None,
        password_source: str = "",
        open_timeout: float = OPEN_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        """``url`` carries no credentials; ``username`` and ``password`` are sent as the
        protocol's login (Basic or Digest, as the camera asks). ``fps`` caps how often
        ``read()`` returns a frame (the stream itself runs at the camera's rate)."""
        self.url = url
        self.fps = fps
        self.transport = transport
        self.username = username
        self._password = password
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.mode = ""  # e.g. "640x360 h264", once open
        secret = password.get_secret_value() if password is not None else ""
        login_url = self._login_url()  # the plain URL without a login: no secret, shown
        self._context = StreamContext(
            url=url,
            username=username,
            password_source=password_source,
            secrets=tuple(s for s in (secret, login_url if login_url != url else "") if s),
            open_timeout=open_timeout,
            read_timeout=read_timeout,
        )
        self._reader: StreamReader | None = None
        self._reformatter: Any = None
        self._last = 0
        self._closed = threading.Event()
        self._pacer = Pacer(fps, self._closed, "the stream was closed")

    def describe(self) -> str:
        """E.g. `stream rtsp://192.168.1.20:554/stream2 640x360 h264` (never a password)."""
        mode = f" {self.mode}" if self.mode else ""
        return f"stream {redact_url(self.url)}{mode}"

    def _login_url(self) -> str:
        """The URL with the login in it: only ever handed to FFmpeg, never shown."""
        if not self.username:
            return self.url
        parts = urlsplit(self.url)
        login = quote(self.username, safe="")
        if self._password is not None:
            login += ":" + quote(self._password.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{login}@{parts.netloc}"))

    def _options(self) -> dict[str, str]:
        options = dict(PROBE_OPTIONS)
        if self._context.protocol == "RTSP":
            options["rtsp_transport"] = self.transport
        return options

    def open(self) -> None:
        """Connect, log in and start the reader; CameraError says what went wrong."""
        av = _import_av()
        self.close()
        self._closed.clear()
        try:
            container = av.open(
                self._login_url(),
                options=self._options(),
                timeout=(self.open_timeout, self.read_timeout),
            )
        except Exception as exc:  # PyAV's error types, worded for the user
            raise CameraError(explain(exc, av, self._context, opening=True)) from None
        if not container.streams.video:
            container.close()
            raise CameraError(
                f"{redact_url(self.url)} has no video stream; check the path in camera.url"
            )
        stream = container.streams.video[0]
        codec = stream.codec_context
        self.mode = f"{codec.width}x{codec.height} {codec.name}"
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._reader = StreamReader(
            container, stream, lambda exc: explain(exc, av, self._context, opening=False)
        )
        self._reader.start()
        self._last = 0
        self._pacer = Pacer(self.fps, self._closed, "the stream was closed")
        login = f" as {self.username}" if self.username else ""
        source = self._context.password_source
        password = f", password from {source}" if self._password and source else ""
        log.info("camera: %s connected%s%s", self.describe(), login, password)

    def read(self) -> np.ndarray:
        """The newest frame not returned yet, HxWx3 uint8 RGB; waits for it if there is none
        (up to ``read_timeout``), and never returns more than ``fps`` frames a second."""
        reader = self._reader
        if reader is None:
            raise CameraError("the stream is not open")
        self._pacer.wait()
        number, frame = reader.newest(self._last, self.read_timeout)
        self._last = number
        rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        return np.ascontiguousarray(rgb)

    def close(self) -> None:
        """Stop the reader and close the connection; a pending ``read()`` gives up."""
        self._closed.set()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop(wait=self.read_timeout + 1.0)


def _import_av() -> ModuleType:
    try:
        import av
    except ImportError:
        raise CameraError(f"network cameras need PyAV: {PYAV_INSTALL}") from None
    return av
