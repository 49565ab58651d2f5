"""The service: wires camera -> engine -> MQTT, and the one place that starts threads.

Threads (docs/threads.md lists what each owns and the lock order), besides paho's network
thread (the MQTT client's), gpiozero's pin threads (button handlers only queue a command) and
the web page's asyncio thread (web/server.py):

- camera: the CameraSupervisor keeps the frame source open and the newest frame in a
  LatestFrame, and reopens a failed camera with backoff;
- frames: the newest frame through the base model (loops.frame_loop), handed to
- predictions: the head, the open-set test, smoothing and the prediction (loops.prediction_loop),
  which also feeds the supervisor's watchdog; the two overlap frames (engine/frames.py);
- trainer: while training is on, one epoch at a time (loops.trainer_loop);
- commands: carries out queued commands one at a time (jobs.py, loops.command_loop), and the
  fleet's turns (fleet/fleet.py: the group's samples in, this board's out);
- keyboard (only with `--simulate`): keys press the mock GPIO buttons.

:meth:`Service.start` and :meth:`Service.shutdown` read as the sequence they run. One event,
:attr:`Service.stop`, ends everything: set by the main thread when SIGTERM/SIGINT arrive (a
:class:`~.signals.SignalPipe` hands them over without a handler that takes a lock), by the
keyboard's quit key or by a thread that failed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..camera import FrameSource, LatestFrame, create_frame_source
from ..camera.supervisor import CameraSupervisor
from ..commands import Command, CommandLimits
from ..config import Config
from ..engine import Engine
from ..engine.frames import Embedded
from ..events import EventFanout
from ..fleet import Fleet
from ..gpio.board import GpioBoard
from ..gpio.simulator import KeyboardButtons, simulated_config
from ..model import TransferLearningModel
from ..mqtt import MqttClient
from ..notify import NullNotifier, ServiceNotifier
from ..store import StateStore
from . import loops
from .handoff import Handoff
from .jobs import CommandQueue, Job, Reply
from .signals import SignalPipe

if TYPE_CHECKING:
    from ..web import WebServer

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 1.5
STATUS_TEXT_INTERVAL = 5.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
        self.stop = threading.Event()
        self.frames = LatestFrame()
        self.events = EventFanout()
        self.camera = CameraSupervisor(
            self.source, self.frames, self._camera_changed, self.stop, config.camera.fps
        )
        self.mqtt = MqttClient(
            config.mqtt,
            model.class_slots(),
            __version__,
            on_command=self._on_mqtt_command,
            unknown_label=config.inference.unknown_label,
            configuration_url=config.web.url,
        )
        self.events.add(self.mqtt)
        self.engine = Engine(
            model, config, store, self.frames, self.events, __version__,
            self.source.describe(), self.camera.frame_age_limit,
        )  # fmt: skip
        limits = CommandLimits(
            config.mqtt.max_image_pixels, config.mqtt.max_payload_bytes, config.mqtt.commands
        )
        self.jobs = CommandQueue(self.engine.execute, limits, self.stop)
        # Frames kept for review are stored by the command thread, never the frame thread.
        self.engine.review.defer = lambda work: self.jobs.put_task(
            work, "keeping a frame for review"
        )
        self.fleet = self._fleet()
        self._threads: list[threading.Thread] = []
        self._fps = loops.RateMeter()
        self._status_text = ""
        self.gpio, self.keyboard = self._buttons(simulate, gpio_factory)
        self.web = self._web_page()

    def _fleet(self) -> Fleet | None:
        config = self.config.fleet
        if not config.enabled:
            return None
        fleet = Fleet(
            config,
            self.engine,
            self.mqtt,
            self.jobs.put_task,
            max_image_pixels=self.config.mqtt.max_image_pixels,
        )
        self.engine.changes.add(fleet.changed)
        self.engine.status.fleet = fleet.status
        return fleet

    def _camera_changed(self, status: Any) -> None:
        self.engine.status.camera_changed(status)

    def _buttons(
        self, simulate: bool, factory: Any
    ) -> tuple[GpioBoard | None, KeyboardButtons | None]:
        config, classes = self.config.gpio, self.model.classes
        gpio = simulated_config(config, classes) if simulate else config
        if not gpio.enabled:
            return None, None
        board = GpioBoard(gpio, classes, self._submit_from_button, factory)
        for sink in board.sinks:
            self.events.add(sink)
        keyboard = None
        if simulate:
            keyboard = KeyboardButtons(gpio, board.factory, board.lights, on_quit=self.request_stop)
            self.events.add(keyboard)
        return board, keyboard

    def _web_page(self) -> WebServer | None:
        if not self.config.web.enabled:
            return None
        from ..web import PageBackend, WebServer  # aiohttp is needed only for the page

        backend = PageBackend(
            self.frames, self.submit, self.vitals, self.config.state.dir, __version__
        )
        web = WebServer(self.config.web, backend)
        self.events.add(web.feed)
        return web

    # --- inputs -----------------------------------------------------------------------------

    def submit(self, command: Command, reply: Reply | None = None) -> bool:
        """Queue a command from a local input (a button, the page); ``reply`` gets the result.
        False (and an ``ok: false`` reply) when the queue is full or the service stops."""
        return self.jobs.put(Job(command.name, None, command, reply))

    def _submit_from_button(self, command: Command) -> bool:
        # A button's result goes to the same result topic as an MQTT command's, marked as such.
        return self.submit(
            command, lambda result: self.mqtt.result(command.name, {**result, "source": "button"})
        )

    def _on_mqtt_command(self, name: str, payload: bytes) -> None:
        # Called in paho's network thread: only queue, never work here.
        self.jobs.put(Job(name, payload, None, lambda result: self.mqtt.result(name, result)))

    def vitals(self) -> dict[str, Any]:
        """Frames classified per second lately, and whether the broker is connected."""
        return {"fps": round(self._fps.rate(), 2), "broker": self.mqtt.connected}

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the state, connect, start the threads and tell the supervisor."""
        self._load_state()
        if self.fleet is not None:
            self.fleet.open()
        self._connect()
        self._start_threads()
        self._start_training_if_asked()
        self.notifier.ready()
        log.info("personalizer %s is running", __version__)

    def _load_state(self) -> None:
        status = self.engine.status

        def progress(text: str | None) -> None:
            # A long job at start (embedding the samples again for a new bundle) is shown on
            # the status while it runs: connect for it.
            if text:
                self._connect()
            status.progress(text)

        outcome = self.store.open(self.model, progress)
        for warning in outcome.warnings:
            status.warn(warning)
        self.engine.after_load()
        log.info(
            "model: bundle %s, classes %s, samples %s, runtime %s",
            self.model.bundle_id,
            ", ".join(self.model.classes),
            self.model.samples(),
            self.model.runtime_name,
        )
        status.publish()

    def _connect(self) -> None:
        if not self.mqtt.started:
            self.mqtt.start()

    def _start_threads(self) -> None:
        engine = self.engine
        self._spawn("camera", self.camera.run)
        embedded: Handoff[Embedded] = Handoff()
        self._spawn(
            "frames",
            lambda: loops.frame_loop(
                self.stop, self.frames, self.camera, engine, self.notifier, embedded,
                self.config.inference.rate,
            ),
        )  # fmt: skip
        self._spawn(
            "predictions",
            lambda: loops.prediction_loop(self.stop, engine, self.notifier, embedded, self._fps),
        )
        pace = self.config.training.min_epoch_interval
        self._spawn("trainer", lambda: loops.trainer_loop(self.stop, engine, pace))
        fleet = self.fleet

        def idle() -> None:
            loops.reload_if_changed_elsewhere(engine)
            if fleet is not None:
                fleet.idle()

        self._spawn("commands", lambda: loops.command_loop(self.stop, self.jobs, idle))
        if self.web is not None:
            self._start_web(self.web)
        if self.keyboard is not None:
            # Not joined at shutdown: it may sit in a blocking read of stdin.
            threading.Thread(
                target=self.keyboard.run, args=(self.stop,), name="personalizer-keyboard",
                daemon=True,
            ).start()  # fmt: skip

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

    def _start_web(self, web: WebServer) -> None:
        self._spawn("web", lambda: web.run(self.stop))
        if not web.wait_started(5.0):
            log.warning("web: the page's server has not started after 5 s")
        elif web.failure is not None:
            self.engine.status.warn(web.failure)
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

    def _start_training_if_asked(self) -> None:
        if not self.config.training.auto_start:
            return
        if sum(self.model.samples().values()):
            self.engine.trainer.start()
        else:
            log.info("training.auto_start: no samples yet, so training waits for cmd/train")

    def request_stop(self) -> None:
        """Ask the service to stop (any thread; never from a signal handler)."""
        self.stop.set()

    @property
    def stop_requested(self) -> bool:
        """True once a stop was asked for."""
        return self.stop.is_set()

    def _update_status_text(self) -> None:
        samples = sum(self.model.samples().values())
        state = "training" if self.engine.trainer.training else "idle"
        mqtt = "mqtt connected" if self.mqtt.connected else "mqtt disconnected"
        text = f"{state}, {samples} samples, {self._fps.rate():.1f} fps, {mqtt}"
        if text != self._status_text:
            self._status_text = text
            self.notifier.status(text)

    def wait(self, signals: SignalPipe | None = None) -> None:
        """Block until a stop is asked for: SIGTERM/SIGINT (when ``signals`` carries them, see
        :meth:`run`) or :meth:`request_stop`."""
        last_text = 0.0
        while not self.stop.is_set():
            if signals is not None:
                taken = signals.wait(0.1)
                if taken is not None:
                    log.info("received %s: stopping", taken.name)
                    self.stop.set()
            else:
                self.stop.wait(0.1)
            if time.monotonic() - last_text > STATUS_TEXT_INTERVAL:
                last_text = time.monotonic()
                self._update_status_text()

    def shutdown(self) -> None:
        """Stop training, stop the threads, save the state, announce offline, disconnect."""
        started = time.monotonic()
        self.engine.trainer.stop(save=False)
        self.stop.set()
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
        with SignalPipe(SIGNALS) as signals:
            try:
                self.start()
                self.wait(signals)
            finally:
                self.shutdown()
        return 0
