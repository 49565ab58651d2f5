"""The bodies of the service's threads: the frame and prediction loops (the two steps of each
frame, see engine/frames.py), the trainer loop and the command loop.

Each runs until the service's stop event is set and never lets an exception end it silently
(the service's thread wrapper stops the daemon if one escapes). What each owns and the lock
order are in docs/threads.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ..camera import LatestFrame
from ..camera.supervisor import CameraSupervisor
from ..engine import Engine
from ..engine.frames import Embedded
from ..notify import ServiceNotifier
from .handoff import Handoff
from .jobs import CommandQueue

log = logging.getLogger(__name__)

SAVE_RETRY_INTERVAL = 5.0  # seconds between attempts to save after a failed save
IDLE_WAIT = 0.5  # seconds a loop waits for work before it looks after its other duties


class RateMeter:
    """Events per second over the last few seconds."""

    def __init__(self, window: float = 3.0) -> None:
        """Counts over the last ``window`` seconds."""
        self.window = window
        self._times: deque[float] = deque()

    def tick(self) -> None:
        """One event now."""
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self) -> float:
        """Events per second lately."""
        now = time.monotonic()
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) / self.window


def frame_loop(
    stop: threading.Event,
    frames: LatestFrame,
    camera: CameraSupervisor,
    engine: Engine,
    notifier: ServiceNotifier,
    embedded: Handoff[Embedded],
    rate: float,
) -> None:
    """The first step of each frame: the newest frame, at ``rate`` per second (0: every new
    frame), through the base model; the result goes to the prediction loop.

    No frame because the camera is down (and retried) or its read blocks (and that is reported),
    and a frame the base model failed on (and that is logged), count as healthy: the watchdog
    is fed here then, unless the prediction loop has work it
    does not take (a stuck loop, a hung head or a deadlock, stops the keep-alive).
    """
    period = 1.0 / rate if rate > 0 else 0.0
    next_due = time.monotonic()
    last = 0
    failures = 0
    while not stop.is_set():
        if period:
            delay = next_due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
        frame = frames.wait_newer(last, timeout=IDLE_WAIT)
        if frame is None:
            if camera.frame_missing() and not embedded.pending:
                notifier.watchdog()
            continue
        camera.frame_arrived()
        last = frame.number
        try:
            embedded.put(engine.frames.embed(frame))
            failures = 0
        except Exception:
            failures += 1
            if failures == 1 or failures % 100 == 0:
                log.exception("the base model failed on frame %d (%d in a row)", last, failures)
            if not embedded.pending:  # the loop is alive; the failure is in the log
                notifier.watchdog()
        if period:
            next_due = max(next_due + period, time.monotonic())


def prediction_loop(
    stop: threading.Event,
    engine: Engine,
    notifier: ServiceNotifier,
    embedded: Handoff[Embedded],
    meter: RateMeter,
) -> None:
    """The second step of each frame: the head, the open-set test, smoothing, the prediction;
    each finished frame feeds the watchdog."""
    failures = 0
    while not stop.is_set():
        item = embedded.take(IDLE_WAIT)
        if item is None:
            continue
        try:
            engine.frames.finish(item)
            failures = 0
        except Exception:
            failures += 1
            if failures == 1 or failures % 100 == 0:
                number = item.frame.number
                log.exception("classifying frame %d failed (%d in a row)", number, failures)
        meter.tick()
        notifier.watchdog()


def trainer_loop(stop: threading.Event, engine: Engine, pace: float) -> None:
    """While training is on, one epoch at a time, at most one every ``pace`` seconds; after a
    cycle, the validation estimate; a failed save is retried now and then."""
    trainer = engine.trainer
    retry = SaveRetry(engine)
    while not stop.is_set():
        retry()
        if not trainer.wait_until_training(IDLE_WAIT):
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
            engine.status.warn(f"training failed and was switched off: {exc}")
        rest = pace - (time.monotonic() - started)
        if rest > 0:
            stop.wait(rest)


class SaveRetry:
    """A failed save (disk full, I/O error) kept the previous file: try again now and then,
    and tell the status when the failure starts and ends."""

    def __init__(self, engine: Engine) -> None:
        """Retries the saves of ``engine``'s store."""
        self._engine = engine
        self._reported: str | None = None  # the failure the status was last told of

    def __call__(self) -> None:
        """Retry when due; republish the status when the failure changed."""
        store = self._engine.store
        failed_at = store.last_failure
        if store.error is not None and failed_at is not None:
            if time.monotonic() - failed_at >= SAVE_RETRY_INTERVAL:
                try:
                    store.save(self._engine.model)
                except Exception as exc:
                    log.warning("saving the state failed again: %s", exc)
        if store.error != self._reported:
            self._reported = store.error
            if store.error is not None:
                log.error("%s", store.error)
            self._engine.status.publish()


def command_loop(stop: threading.Event, jobs: CommandQueue, idle: Callable[[], None]) -> None:
    """Carry out queued commands one at a time; between them, ``idle()`` (the state's own
    upkeep: loading what another process wrote, setting damaged rows aside, the fleet's). An
    upkeep that fails (a full disk) is logged and tried again; commands go on."""
    failures = 0
    while not stop.is_set():
        job = jobs.next(IDLE_WAIT)
        if job is not None:
            jobs.run(job)
            continue
        try:
            idle()
            failures = 0
        except Exception:
            failures += 1
            if failures == 1 or failures % 100 == 0:
                log.exception("the state's upkeep failed (%d in a row)", failures)


def reload_if_changed_elsewhere(engine: Engine) -> None:
    """`personalizer import` into a running daemon writes the database directly; the command
    thread (where nothing else changes the state meanwhile) loads it."""
    engine.set_aside_damaged()
    store = engine.store
    if not store.changed_elsewhere():
        return
    log.warning("the state database was changed by another process: loading it")
    engine.trainer.stop(save=False)
    try:
        outcome = store.reload(engine.model, engine.status.progress)
    except Exception as exc:
        log.exception("loading the changed state failed")
        engine.status.warn(f"loading the state another process wrote failed: {exc}")
        return
    for warning in outcome.warnings:
        engine.status.warn(warning)
    engine.after_load()
    if outcome.merged:
        engine.samples_changed()
    engine.status.publish()
