"""The service: wires camera -> model -> trainer -> MQTT, and the one place with threads.

Threads (besides paho's network thread, started by the MQTT client):

- camera: the CameraSupervisor (camera/supervisor.py) keeps the frame source open, the newest
  frame in a LatestFrame, and reopens a failed camera with backoff;
- frames: classifies the newest frame at `[inference] rate` and publishes smoothed predictions;
  it is also the supervisor's keep-alive (`watchdog()` per classified frame, and while the camera
  is known to be down and retried, or its read blocks: both are reported in the status), so only
  a stuck frame loop (a hung predict, a deadlock) stops the keep-alives;
- trainer: while training is on, one epoch at a time, paced by `min_epoch_interval`;
- commands: carries out queued commands one at a time, from MQTT and from :meth:`Service.submit`
  (the input-events entry that buttons use), and sends each result back;
- keyboard (only with `--simulate`): keys press the mock GPIO buttons;
- web (only with `[web] enabled`): the page's server, an asyncio loop of its own
  (web/server.py); it sends commands through :meth:`Service.submit` and hears events as a sink.

GPIO buttons are gpiozero devices: gpiozero calls their handlers from its own pin threads, and
the handlers only queue a command through :meth:`Service.submit`.

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
from typing import TYPE_CHECKING, Any

from . import __version__
from .camera import FrameSource, LatestFrame, create_frame_source
from .camera.supervisor import CameraSupervisor
from .commands import Command, CommandError, CommandLimits, parse_command, reply
from .config import Config
from .events import EventFanout
from .gpio.board import GpioBoard
from .gpio.simulator import KeyboardButtons, simulated_config
from .model import TransferLearningModel
from .mqtt import MqttClient
from .notify import NullNotifier, ServiceNotifier
from .session import Session
from .store import StateStore

if TYPE_CHECKING:
    from .web import WebServer

log = logging.getLogger(__name__)

COMMAND_QUEUE_SIZE = 32
JOIN_TIMEOUT = 1.5
STATUS_TEXT_INTERVAL = 5.0
SAVE_RETRY_INTERVAL = 5.0  # seconds between attempts to save after a failed save

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
        model: TransferLearningModel,
        store: StateStore,
        *,
        source: FrameSource | None = None,
        notifier: ServiceNotifier | None = None,
        simulate: bool = False,
        gpio_factory: Any = None,
    ) -> None:
        """Build every part; raises GpioError when a configured pin cannot be opened.

        ``simulate`` puts the buttons and LEDs on mock pins pressed by keyboard keys;
        ``gpio_factory`` overrides the configured gpiozero pin factory (tests pass a mock one).
        """
        self.config = config
        self.model = model
        self.store = store
        side = model.input_shape[1] if model.input_kind == "image" else None
        self.source = source if source is not None else create_frame_source(config.camera, side)
        self.notifier: ServiceNotifier = notifier if notifier is not None else NullNotifier()
        self.frames = LatestFrame()
        self.events = EventFanout()
        self._stop = threading.Event()
        self.camera = CameraSupervisor(
            self.source,
            self.frames,
            lambda status: self.session.camera_changed(status),
            self._stop,
            config.camera.fps,
        )
        self.mqtt = MqttClient(
            config.mqtt,
            model.class_slots(),
            __version__,
            on_command=self._on_mqtt_command,
            unknown_label=config.inference.unknown_label,
            configuration_url=self._configuration_url(config),
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
            frame_age_limit=self.camera.frame_age_limit,
        )
        self.limits = CommandLimits(
            config.mqtt.max_image_pixels,
            config.mqtt.max_payload_bytes,
            enabled=config.mqtt.commands,
        )
        self._jobs: queue.Queue[_Job] = queue.Queue(maxsize=COMMAND_QUEUE_SIZE)
        self._stop_requested = False
        self._threads: list[threading.Thread] = []
        self._fps = _RateMeter()
        self._status_text = ""
        self._reported_save_error: str | None = None
        self.gpio: GpioBoard | None = None
        self.keyboard: KeyboardButtons | None = None
        gpio = simulated_config(config.gpio, model.classes) if simulate else config.gpio
        if gpio.enabled:
            self.gpio = GpioBoard(gpio, model.classes, self._submit_from_button, gpio_factory)
            for sink in self.gpio.sinks:
                self.events.add(sink)
            if simulate:
                self.keyboard = KeyboardButtons(
                    gpio, self.gpio.factory, self.gpio.lights, on_quit=self.request_stop
                )
                self.events.add(self.keyboard)
        self.web: WebServer | None = None
        if config.web.enabled:
            from .web import PageBackend, WebServer  # aiohttp is needed only for the page

            backend = PageBackend(
                self.frames, self.submit, self.vitals, config.state.dir, __version__
            )
            self.web = WebServer(config.web, backend)
            self.events.add(self.web.feed)

    @staticmethod
    def _configuration_url(config: Config) -> str | None:
        """The web page's address for Home Assistant's device link (None: no page)."""
        web = getattr(config, "web", None)
        if web is None or not getattr(web, "enabled", False):
            return None
        url = getattr(web, "url", None)
        return url() if callable(url) else url

    # --- inputs -----------------------------------------------------------------------------

    def submit(self, command: Command, reply: Reply | None = None) -> bool:
        """Queue a command from a local input (a button); `reply` gets the result dict.

        Returns False (and replies with ok: false) when the queue is full or the service stops.
        """
        return self._enqueue(_Job(command.name, None, command, reply))

    def _submit_from_button(self, command: Command) -> bool:
        # A button's result goes to the same result topic as an MQTT command's, marked as such.
        return self.submit(
            command, lambda result: self.mqtt.result(command.name, {**result, "source": "button"})
        )

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
            job.reply(reply(None, error=reason))
        return False

    def vitals(self) -> dict[str, Any]:
        """Frames classified per second lately, and whether the broker is connected."""
        return {"fps": round(self._fps.rate(), 2), "broker": self.mqtt.connected}

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
                # No frame because the camera is down (and retried) or its read blocks (and
                # that is reported): the loop itself is healthy. Only a stuck frame loop (a hung
                # predict, a deadlock) stops the keep-alive.
                if self.camera.frame_missing():
                    self.notifier.watchdog()
                continue
            self.camera.frame_arrived()
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
            self._retry_failed_save()
            if not trainer.wait_until_training(0.5):
                try:
                    trainer.finish_cycle()  # the validation estimate after a cycle
                except Exception:
                    log.exception("the validation estimate failed")
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

    def _retry_failed_save(self) -> None:
        # A failed save (disk full, I/O error) kept the previous file; try again now and then,
        # and tell the status when the failure starts and ends.
        store = self.store
        failed_at = store.last_failure
        if store.error is not None and failed_at is not None:
            if time.monotonic() - failed_at >= SAVE_RETRY_INTERVAL:
                try:
                    store.save(self.model)
                except Exception as exc:
                    log.warning("saving the state failed again: %s", exc)
        if store.error != self._reported_save_error:
            self._reported_save_error = store.error
            if store.error is not None:
                log.error("%s", store.error)
            self.session.publish_status()

    def _command_loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                self._reload_if_changed_elsewhere()
                continue
            self._run_job(job)

    def _reload_if_changed_elsewhere(self) -> None:
        # `personalizer import` into a running daemon writes the database directly; the
        # command thread (where nothing else changes the state meanwhile) loads it.
        if not self.store.changed_elsewhere():
            return
        log.warning("the state database was changed by another process: loading it")
        self.session.trainer.stop(save=False)
        try:
            outcome = self.store.reload(self.model, self.session.progress)
        except Exception as exc:
            log.exception("loading the changed state failed")
            self.session.warn(f"loading the state another process wrote failed: {exc}")
            return
        for warning in outcome.warnings:
            self.session.warn(warning)
        self.session.after_load()
        if outcome.merged:
            self.session.samples_changed()
        self.session.publish_status()

    def _run_job(self, job: _Job) -> None:
        request_id = None
        try:
            command = job.command
            if command is None:
                command = parse_command(job.name, job.payload or b"", self.limits)
            request_id = command.request_id
            result = reply(request_id, **self.session.execute(command))
        except CommandError as exc:
            rid = exc.request_id if exc.request_id is not None else request_id
            log.info("command %s refused: %s", job.name, exc.reason)
            result = reply(rid, error=exc.reason)
        except Exception as exc:
            log.exception("command %s failed", job.name)
            result = reply(request_id, error=f"internal error: {exc}")
        if job.reply is not None:
            try:
                job.reply(result)
            except Exception:
                log.exception("sending the result of %s failed", job.name)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the saved state, connect, start the threads and tell the supervisor."""
        mqtt_started = False

        def progress(text: str | None) -> None:
            # A long job at start (embedding the samples again for a new bundle) is shown on
            # the status while it runs: connect for it.
            nonlocal mqtt_started
            if text and not mqtt_started:
                self.mqtt.start()
                mqtt_started = True
            self.session.progress(text)

        outcome = self.store.open(self.model, progress)
        for warning in outcome.warnings:
            self.session.warn(warning)
        self.session.after_load()
        samples = self.model.samples()
        log.info(
            "model: bundle %s, classes %s, samples %s, runtime %s",
            self.model.bundle_id,
            ", ".join(self.model.classes),
            dict(samples),
            getattr(self.model, "runtime_name", "?"),
        )
        self.session.publish_status()
        if not mqtt_started:
            self.mqtt.start()
        self._spawn("camera", self.camera.run)
        self._spawn("frames", self._frame_loop)
        self._spawn("trainer", self._trainer_loop)
        self._spawn("commands", self._command_loop)
        if self.web is not None:
            self._start_web(self.web)
        if self.keyboard is not None:
            # Not joined at shutdown: it may sit in a blocking read of stdin.
            threading.Thread(
                target=self.keyboard.run, args=(self._stop,), name="personalizer-keyboard",
                daemon=True,
            ).start()  # fmt: skip
        if self.config.training.auto_start:
            if sum(samples.values()):
                self.session.trainer.start()
            else:
                log.info("training.auto_start: no samples yet, so training waits for cmd/train")
        self.notifier.ready()
        log.info("personalizer %s is running", __version__)

    def _start_web(self, web: WebServer) -> None:
        self._spawn("web", lambda: web.run(self._stop))
        if not web.wait_started(5.0):
            log.warning("web: the page's server has not started after 5 s")
        elif web.failure is not None:
            self.session.warn(web.failure)
        else:
            log.info("web: the page is at %s", web.url)
            if web.config.password is None:
                host, port = web.config.bind
                log.warning(
                    "web: no password is set, so the page listens on %s:%d only (this board); "
                    "to open it to the network, put a password in the file of [web] "
                    "password_file or of the systemd credential %s "
                    "(/etc/personalizer/web_password) and restart",
                    host,
                    port,
                    web.config.password_credential,
                )
            else:
                log.info("web: password from %s", web.config.password_source)

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
            self.store.close()
        except Exception:
            log.exception("saving the state at shutdown failed")
        self.mqtt.stop()
        if self.gpio is not None:
            self.gpio.close()
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


class SetupError(Exception):
    """The service cannot be built from this configuration (exit 78); the message says why."""


def build_service(
    config: Config,
    *,
    source: FrameSource | None = None,
    notifier: ServiceNotifier | None = None,
    simulate: bool = False,
    gpio_factory: Any = None,
) -> Service:
    """Everything `personalizer run` starts, built from ``config`` (tests use it too).

    Prepares the state folder, loads the bundle into the runtime model and wires the service;
    ``source``, ``notifier`` and ``gpio_factory`` replace the configured camera, the
    supervisor hooks and the pin factory.

    Raises:
        SetupError: the state folder, bundle, runtime, MQTT TLS files or GPIO pins cannot be
            used; the message names which and why.
    """
    from .edgetpu_guard import EdgeTpuGuard
    from .errors import BundleError, ClassListError, RuntimeNotAvailable
    from .gpio import GpioError
    from .model import TransferLearningModel
    from .mqtt import MqttSetupError
    from .store import StateDirError

    store = StateStore(config.state.dir, store_images=config.state.store_images)
    try:
        store.prepare()
    except StateDirError as exc:
        raise SetupError(str(exc)) from None
    log.info("loading bundle %s", config.model.bundle)
    delegate, guard = config.model.delegate, EdgeTpuGuard(config.state.dir)
    crashed = guard.crashed_before() if delegate == "edgetpu" else None
    if crashed:
        log.error("%s", crashed)
        delegate = None
    elif delegate == "edgetpu":
        guard.arm()
    try:
        model = TransferLearningModel(
            config.model.bundle,
            config.model.classes,
            runtime=config.model.runtime,
            num_threads=config.model.base_threads,
            delegate=delegate,
            edgetpu_device=config.model.device,
        )
    except (BundleError, ClassListError, RuntimeNotAvailable) as exc:
        raise SetupError(f"model.bundle {config.model.bundle} cannot be used: {exc}") from None
    finally:
        if delegate == "edgetpu":
            guard.disarm()
    try:
        service = Service(
            config,
            model,
            store,
            source=source,
            notifier=notifier,
            simulate=simulate,
            gpio_factory=gpio_factory,
        )
    except (MqttSetupError, GpioError) as exc:
        raise SetupError(str(exc)) from None
    if crashed:
        service.session.warn(crashed)
    return service
