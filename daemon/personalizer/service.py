"""The service: wires camera -> model -> trainer -> MQTT, and the one place with threads.

Threads (besides paho's network thread, started by the MQTT client):

- camera: opens the frame source, keeps the newest frame in a LatestFrame, and reopens a failed
  camera with backoff (1 s doubling to 30 s) without dying or spinning;
- frames: classifies the newest frame at `[inference] rate` and publishes smoothed predictions;
  it is also the supervisor's keep-alive (`watchdog()` per classified frame, and while the camera
  is known to be down and retried), so a hung camera read or a deadlock stops the keep-alives;
- trainer: while training is on, one epoch at a time, paced by `min_epoch_interval`;
- commands: carries out queued commands one at a time, from MQTT and from :meth:`Service.submit`
  (the input-events entry that buttons use), and sends each result back.

The main thread waits for SIGTERM/SIGINT and then stops everything in order: training stops, the
state is saved, `offline` is announced, the broker connection is closed; within 5 seconds.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from . import __version__
from .camera import CameraError, FrameSource, LatestFrame, create_frame_source
from .commands import Command, CommandError, CommandLimits, parse_command
from .config import Config
from .events import CameraStatus, EventFanout
from .mqtt import MqttClient
from .notify import NullNotifier, ServiceNotifier
from .session import Session, SessionModel
from .trainer import StateStore

log = logging.getLogger(__name__)

CAMERA_BACKOFF_START = 1.0
CAMERA_BACKOFF_MAX = 30.0
CAMERA_HEALTHY_AFTER = 10.0  # seconds of frames before the backoff starts over
COMMAND_QUEUE_SIZE = 32
JOIN_TIMEOUT = 1.5
STATUS_TEXT_INTERVAL = 5.0

Reply = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Job:
    """One queued command: raw from MQTT (`name` + `payload`) or already typed (`command`)."""

    name: str
    payload: bytes | None
    command: Command | None
    reply: Reply | None


class _RateMeter:
    """Events per second over the last few seconds."""

    def __init__(self, window: float = 3.0) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self) -> float:
        now = time.monotonic()
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) / self.window


class Service:
    """The daemon: builds the parts around a loaded model and runs them until told to stop."""

    def __init__(
        self,
        config: Config,
        model: SessionModel,
        store: StateStore,
        *,
        source: FrameSource | None = None,
        notifier: ServiceNotifier | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.store = store
        self.source = source if source is not None else create_frame_source(config.camera)
        self.notifier: ServiceNotifier = notifier if notifier is not None else NullNotifier()
        self.frames = LatestFrame()
        self.events = EventFanout()
        self.mqtt = MqttClient(
            config.mqtt, config.model.classes, __version__, on_command=self._on_mqtt_command
        )
        self.events.add(self.mqtt)
        self.session = Session(
            model,
            config,
            store,
            self.frames,
            self.events,
            bundle_id=model.bundle_id,
            version=__version__,
            camera_source=self.source.describe(),
        )
        self.limits = CommandLimits(
            config.model.classes, config.mqtt.max_image_pixels, config.mqtt.max_payload_bytes
        )
        self._jobs: queue.Queue[_Job] = queue.Queue(maxsize=COMMAND_QUEUE_SIZE)
        self._stop = threading.Event()
        self._camera_down = threading.Event()  # set while the camera is failed and retried
        self._stop_requested = False
        self._threads: list[threading.Thread] = []
        self._fps = _RateMeter()
        self._status_text = ""

    # --- inputs -----------------------------------------------------------------------------

    def submit(self, command: Command, reply: Reply | None = None) -> bool:
        """Queue a command from a local input (a button); `reply` gets the result dict.

        Returns False (and replies with ok: false) when the queue is full or the service stops.
        """
        return self._enqueue(_Job(command.name, None, command, reply))

    def _on_mqtt_command(self, name: str, payload: bytes) -> None:
        # Called in paho's network thread: only queue, never work here.
        self._enqueue(_Job(name, payload, None, lambda result: self.mqtt.result(name, result)))

    def _enqueue(self, job: _Job) -> bool:
        if not self._stop.is_set():
            try:
                self._jobs.put_nowait(job)
                return True
            except queue.Full:
                reason = "busy: too many commands are waiting; try again in a moment"
        else:
            reason = "the daemon is stopping"
        if job.reply is not None:
            job.reply({"ok": False, "error": reason, "request_id": None})
        return False

    # --- threads ----------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:  # a thread that dies silently would leave the daemon half-alive
                log.exception("the %s thread failed; stopping the daemon", name)
                self.request_stop()

        thread = threading.Thread(target=guarded, name=f"personalizer-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _camera_loop(self) -> None:
        backoff = CAMERA_BACKOFF_START
        while not self._stop.is_set():
            try:
                self.source.open()
            except Exception as exc:  # CameraError, or anything a driver throws
                if not isinstance(exc, CameraError):
                    log.exception("camera open failed unexpectedly")
                self._camera_failed(str(exc), backoff)
                backoff = min(backoff * 2, CAMERA_BACKOFF_MAX)
                continue
            self._camera_down.clear()
            description = self.source.describe()
            log.info("camera: %s is open", description)
            self.session.camera_changed(CameraStatus(description, ok=True))
            opened = time.monotonic()
            error = "stopped"
            try:
                while not self._stop.is_set():
                    self.frames.put(self.source.read())
            except CameraError as exc:
                error = str(exc)
            except Exception as exc:
                log.exception("camera read failed unexpectedly")
                error = repr(exc)
            finally:
                try:
                    self.source.close()
                except Exception:  # closing a broken camera must not stop the reopen loop
                    log.exception("camera close failed")
            if self._stop.is_set():
                break
            if time.monotonic() - opened > CAMERA_HEALTHY_AFTER:
                backoff = CAMERA_BACKOFF_START
            self._camera_failed(error, backoff)
            backoff = min(backoff * 2, CAMERA_BACKOFF_MAX)

    def _camera_failed(self, error: str, retry_in: float) -> None:
        self._camera_down.set()
        log.warning("camera %s: %s; retrying in %.0f s", self.source.describe(), error, retry_in)
        self.session.camera_changed(CameraStatus(self.source.describe(), ok=False, error=error))
        self._stop.wait(retry_in)

    def _frame_loop(self) -> None:
        rate = self.config.inference.rate
        period = 1.0 / rate if rate > 0 else 0.0
        next_due = time.monotonic()
        last = 0
        failures = 0
        while not self._stop.is_set():
            if period:
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
            frame = self.frames.wait_newer(last, timeout=0.5)
            if frame is None:
                if self._camera_down.is_set():
                    # No frames because the camera is known to be down and is being retried:
                    # the loop itself is healthy. A read that hangs keeps the flag clear, and
                    # the missing keep-alive lets the supervisor restart the service.
                    self.notifier.watchdog()
                continue
            last = frame.number
            try:
                self.session.classify_frame(frame)
                failures = 0
            except Exception:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.exception("classifying frame %d failed (%d in a row)", last, failures)
            self._fps.tick()
            self.notifier.watchdog()
            if period:
                next_due = max(next_due + period, time.monotonic())

    def _trainer_loop(self) -> None:
        trainer = self.session.trainer
        pace = self.config.training.min_epoch_interval
        while not self._stop.is_set():
            if not trainer.wait_until_training(0.5):
                continue
            started = time.monotonic()
            try:
                trainer.run_epoch()
            except Exception as exc:
                log.exception("training failed; training is switched off")
                trainer.stop(save=False)
                self.session.warn(f"training failed and was switched off: {exc}")
            rest = pace - (time.monotonic() - started)
            if rest > 0:
                self._stop.wait(rest)

    def _command_loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            self._run_job(job)

    def _run_job(self, job: _Job) -> None:
        request_id = None
        try:
            command = job.command
            if command is None:
                command = parse_command(job.name, job.payload or b"", self.limits)
            request_id = command.request_id
            result: dict[str, Any] = {"ok": True, "request_id": request_id}
            result.update(self.session.execute(command))
        except CommandError as exc:
            rid = exc.request_id if exc.request_id is not None else request_id
            log.info("command %s refused: %s", job.name, exc.reason)
            result = {"ok": False, "error": exc.reason, "request_id": rid}
        except Exception as exc:
            log.exception("command %s failed", job.name)
            result = {"ok": False, "error": f"internal error: {exc}", "request_id": request_id}
        if job.reply is not None:
            try:
                job.reply(result)
            except Exception:
                log.exception("sending the result of %s failed", job.name)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the saved state, connect, start the threads and tell the supervisor."""
        outcome = self.store.load_into(self.model)
        if outcome.warning:
            self.session.warn(outcome.warning)
        samples = self.model.samples()
        log.info(
            "model: bundle %s, classes %s, samples %s, runtime %s",
            self.model.bundle_id,
            ", ".join(self.config.model.classes),
            dict(samples),
            getattr(self.model, "runtime_name", "?"),
        )
        self.session.publish_status()
        self.mqtt.start()
        self._spawn("camera", self._camera_loop)
        self._spawn("frames", self._frame_loop)
        self._spawn("trainer", self._trainer_loop)
        self._spawn("commands", self._command_loop)
        if self.config.training.auto_start:
            if sum(samples.values()):
                self.session.trainer.start()
            else:
                log.info("training.auto_start: no samples yet, so training waits for cmd/train")
        self.notifier.ready()
        log.info("personalizer %s is running", __version__)

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Ask the service to stop (signal handler, or any thread)."""
        if signum is not None:
            log.info("received %s: stopping", signal.Signals(signum).name)
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """True once a stop was asked for."""
        return self._stop_requested

    def _update_status_text(self) -> None:
        samples = sum(self.model.samples().values())
        state = "training" if self.session.trainer.training else "idle"
        mqtt = "mqtt connected" if self.mqtt.connected else "mqtt disconnected"
        text = f"{state}, {samples} samples, {self._fps.rate():.1f} fps, {mqtt}"
        if text != self._status_text:
            self._status_text = text
            self.notifier.status(text)

    def wait(self) -> None:
        """Block until a stop is requested."""
        last_text = 0.0
        while not self._stop_requested:
            time.sleep(0.1)
            if time.monotonic() - last_text > STATUS_TEXT_INTERVAL:
                last_text = time.monotonic()
                self._update_status_text()

    def shutdown(self) -> None:
        """Stop training, stop the threads, save the state, announce offline, disconnect."""
        started = time.monotonic()
        self.session.trainer.stop(save=False)
        self._stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("thread %s did not stop in time; leaving it", thread.name)
        self.notifier.stopping()  # after the frame loop's last watchdog
        try:
            size = self.store.save(self.model)
            log.info("state saved to %s (%d bytes)", self.store.path, size)
        except Exception:
            log.exception("saving the state at shutdown failed")
        self.mqtt.stop()
        log.info("stopped in %.1f s", time.monotonic() - started)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status (0)."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()
        return 0
