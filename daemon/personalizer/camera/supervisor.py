"""Camera supervision: keep a frame source open, reopen it with backoff, notice when it stalls.

:meth:`CameraSupervisor.run` is the body of the service's camera thread: it opens the source,
puts every frame into the :class:`LatestFrame`, and when the camera fails (or cannot be opened)
reports it and tries again after a backoff (1 s doubling to 30 s, back to 1 s once the camera
ran for a while), without dying or spinning. The frame loop tells the supervisor when it waited
in vain (:meth:`frame_missing`) or got a frame (:meth:`frame_arrived`): a camera whose reads
block is reported as stalled, and recovers by itself when frames return. Every change of the
camera's health goes to ``on_status`` (the session's status).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..events import CameraStatus
from .latest import LatestFrame
from .source import CameraError, FrameSource

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 10.0  # seconds of frames before the backoff starts over
MIN_FRAME_AGE_LIMIT = 2.0  # seconds: an older "current" frame means the camera is stuck


class CameraSupervisor:
    """Runs one frame source for the service and keeps its health up to date."""

    def __init__(
        self,
        source: FrameSource,
        frames: LatestFrame,
        on_status: Callable[[CameraStatus], None],
        stop: threading.Event,
        fps: float,
    ) -> None:
        self.source = source
        self.frames = frames
        self.on_status = on_status
        self.stop = stop
        # A frame older than this (or no frame for this long) means the camera is not delivering.
        self.frame_age_limit = max(MIN_FRAME_AGE_LIMIT, 5.0 / fps)
        self._status = CameraStatus(source.describe(), ok=False, starting=True)
        self._down = threading.Event()  # set while the camera is failed and retried
        self._last_frame_at = time.monotonic()
        self._stalled = False
        self._down_since: float | None = None  # when the camera last failed, until it is back

    @property
    def status(self) -> CameraStatus:
        """The camera's health as last reported."""
        return self._status

    def _report(self, status: CameraStatus) -> None:
        if status != self._status:
            self._status = status
            self.on_status(status)

    # --- the camera thread --------------------------------------------------------------------

    def run(self) -> None:
        """Open, read and reopen the camera until ``stop`` is set."""
        backoff = BACKOFF_START
        while not self.stop.is_set():
            try:
                self.source.open()
            except Exception as exc:  # CameraError, or anything a driver throws
                if not isinstance(exc, CameraError):
                    log.exception("camera open failed unexpectedly")
                self._failed(str(exc), backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._down.clear()
            self._last_frame_at = time.monotonic()  # a reopened camera gets time to deliver
            description = self.source.describe()
            if self._down_since is not None:
                down = time.monotonic() - self._down_since
                log.info("camera: %s is back after %.0f s down", description, down)
                self._down_since = None
            else:
                log.info("camera: %s is open", description)
            self._report(CameraStatus(description, ok=True))
            opened = time.monotonic()
            error = self._read_until_failure()
            if self.stop.is_set():
                break
            if time.monotonic() - opened > HEALTHY_AFTER:
                backoff = BACKOFF_START
            self._failed(error, backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _read_until_failure(self) -> str:
        try:
            while not self.stop.is_set():
                self.frames.put(self.source.read())
            return "stopped"
        except CameraError as exc:
            return str(exc)
        except Exception as exc:
            log.exception("camera read failed unexpectedly")
            return repr(exc)
        finally:
            try:
                self.source.close()
            except Exception:  # closing a broken camera must not stop the reopen loop
                log.exception("camera close failed")

    def _failed(self, error: str, retry_in: float) -> None:
        self._down.set()
        if self._down_since is None:
            self._down_since = time.monotonic()
        log.warning("camera %s: %s; retrying in %.0f s", self.source.describe(), error, retry_in)
        self._report(CameraStatus(self.source.describe(), ok=False, error=error))
        self.stop.wait(retry_in)

    # --- what the frame loop tells it ---------------------------------------------------------

    def frame_missing(self) -> bool:
        """No new frame came in a wait: True when that is explained (the camera is known down,
        or its reads block and that is reported), so the waiting loop itself is healthy."""
        if self._down.is_set():
            self._last_frame_at = time.monotonic()
            return True
        silent = time.monotonic() - self._last_frame_at
        if silent < self.frame_age_limit:
            return False
        if not self._stalled:
            self._stalled = True
            error = f"no frame for {self.frame_age_limit:.0f} s: the camera read is blocking"
            log.warning("camera %s: %s", self.source.describe(), error)
            self._report(CameraStatus(self.source.describe(), ok=False, error=error))
        return True

    def frame_arrived(self) -> None:
        """A new frame came: a stall, if one was reported, is over."""
        self._last_frame_at = time.monotonic()
        if self._stalled:
            self._stalled = False
            log.info("camera %s: frames are coming again", self.source.describe())
            self._report(CameraStatus(self.source.describe(), ok=True))
