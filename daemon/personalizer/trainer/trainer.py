"""The trainer: starts, pauses and paces on-device training, one epoch at a time.

Plain and synchronous: `run_epoch()` trains one epoch and returns; the service calls it in a
loop from its trainer thread. Between epochs it publishes the loss, saves the state when the
autosave interval has passed, and ends a cycle by itself: when the loss stops improving
(plateau.py), after `epochs_per_cycle` epochs when that is set, or never with `until_stopped`.
How the last cycle ended (:class:`CycleEnd`) is in the status. Pausing sets an event that the
runtime model checks between batches, so `stop` takes effect within one batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Protocol

from ..config import TrainingConfig
from ..errors import NoSamplesError, SamplesChanged
from ..events import LossEvent
from ..store import LAST_CYCLE, StateStore
from .plateau import REASONS, Plateau

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleEnd:
    """How a training cycle ended: why (a key of plateau.REASONS), after how many epochs, the
    last loss, and when."""

    reason: str
    epochs: int
    loss: float | None
    ts: float

    @property
    def text(self) -> str:
        """In words, for the log and the page."""
        loss = "" if self.loss is None else f", loss {self.loss:.4f}"
        return f"training finished: {REASONS[self.reason]} ({self.epochs} epochs{loss})"

    @classmethod
    def from_kept(cls, kept: Mapping[str, object] | None) -> CycleEnd | None:
        """The cycle as the state kept it (``dataclasses.asdict``); None when it is not one."""
        if not kept or not isinstance(kept, Mapping):
            return None
        reason, epochs, loss, ts = (kept.get(k) for k in ("reason", "epochs", "loss", "ts"))
        number = (int, float)
        if (
            reason not in REASONS
            or not isinstance(epochs, int)
            or not (loss is None or isinstance(loss, number))
            or not isinstance(ts, number)
        ):
            log.warning("the state's record of the last training cycle is unreadable: %r", kept)
            return None
        return cls(str(reason), epochs, None if loss is None else float(loss), float(ts))


class TrainableModel(Protocol):
    """What the trainer needs from the runtime model."""

    def train(
        self,
        epochs: int = 1,
        on_loss: Callable[[int, float], None] | None = None,
        stop: threading.Event | None = None,
    ) -> float:
        """Train `epochs` epochs; returns the last epoch's mean loss."""
        ...

    def samples(self) -> Mapping[str, int]:
        """Number of samples per class."""
        ...

    @property
    def epochs(self) -> int:
        """Complete epochs trained since the parameters were (re)initialised."""
        ...


class Trainer:
    """Training on/off, epoch counting, loss events and autosave."""

    def __init__(
        self,
        model: TrainableModel,
        store: StateStore,
        config: TrainingConfig,
        on_loss: Callable[[LossEvent], None],
        on_state_change: Callable[[], None],
        on_cycle_end: Callable[[], object] | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.config = config
        self.on_loss = on_loss
        self.on_state_change = on_state_change
        self.on_cycle_end = on_cycle_end  # called in the trainer thread after a cycle
        self._cycle_ended = False
        self._wanted = threading.Event()
        self._halt = threading.Event()  # the runtime's `stop`: set whenever training should end
        self._halt.set()
        self._lock = threading.Lock()
        # Held by the trainer thread around an epoch; a stop() that saves waits on it (never
        # holding it with another lock), so the save has the last batch trained.
        self._epoch_lock = threading.Lock()
        self._cycle_epochs = 0
        self._plateau = Plateau()
        self._cycle_loss: float | None = None
        self.last_cycle: CycleEnd | None = None  # how the last cycle ended
        self._dirty = False  # trained since the last save

    @property
    def training(self) -> bool:
        """True while training is switched on."""
        return self._wanted.is_set()

    def total_samples(self) -> int:
        """All stored samples."""
        return int(sum(self.model.samples().values()))

    def start(self) -> bool:
        """Switch training on; False if it already was. NoSamplesError when there is nothing."""
        with self._lock:
            if self._wanted.is_set():
                return False
            if self.total_samples() == 0:
                raise NoSamplesError(
                    "there are no samples to train on: take a few of each class first"
                )
            self._cycle_epochs = 0
            self._plateau = Plateau()
            self._cycle_loss = None
            self._halt.clear()
            self._wanted.set()
        log.info("training started")
        self.on_state_change()
        return True

    def stop(self, save: bool = True, reason: str = "stopped") -> bool:
        """Switch training off (the running epoch ends after its batch); False if it was off.
        ``reason`` (a key of plateau.REASONS) is recorded as how the cycle ended. With ``save``
        it waits for that batch and saves what was trained, so a reply to `train stop` means
        the state on disk is the trained head (an export right after has it)."""
        with self._lock:
            was_on = self._wanted.is_set()
            self._wanted.clear()
            self._halt.set()
        if was_on:
            self.last_cycle = CycleEnd(reason, self._cycle_epochs, self._cycle_loss, time.time())
            log.info("%s, at epoch %d", self.last_cycle.text, self.model.epochs)
            self._keep_cycle()
            self._cycle_ended = self._cycle_ended or self._cycle_epochs > 0
            self.on_state_change()
        if save:
            with self._epoch_lock:  # the running batch ends (halt is set), then nothing trains
                pass
            self.save_if_dirty()
        return was_on

    def load(self) -> None:
        """Take how the last cycle ended from the state (after it was opened or reloaded)."""
        self.last_cycle = CycleEnd.from_kept(self.store.kept(LAST_CYCLE))

    def forget_cycle(self) -> None:
        """Forget how the last cycle ended (every sample and parameter was cleared)."""
        self.last_cycle = None
        self._keep_cycle()

    def _keep_cycle(self) -> None:
        cycle = self.last_cycle
        try:
            kept = None if cycle is None else asdict(cycle)
            self.store.keep(LAST_CYCLE, kept, "recording how training ended")
        except OSError as exc:  # the status says the write failed; training goes on
            log.warning("keeping how training ended failed: %s", exc)

    def finish_cycle(self) -> bool:
        """After a training cycle ended: run ``on_cycle_end`` (the validation estimate) once.

        Called from the trainer thread, so the estimate never holds up a command. Returns
        whether it ran.
        """
        if not self._cycle_ended or self._wanted.is_set() or self.on_cycle_end is None:
            return False
        self._cycle_ended = False
        self.on_cycle_end()
        return True

    def wait_until_training(self, timeout: float) -> bool:
        """Block until training is on (True) or `timeout` passes (False)."""
        return self._wanted.wait(timeout)

    def save_if_dirty(self) -> None:
        """Save the state if training changed it since the last save."""
        if self._dirty:
            self._dirty = False
            try:
                self.store.save(self.model)
            except OSError as exc:
                self._dirty = True
                log.error("saving the training state failed: %s", exc)

    def run_epoch(self) -> float | None:
        """Train one epoch (if training is on); returns its loss, or None if none was trained."""
        if not self._wanted.is_set():
            return None
        before = self.model.epochs
        try:
            with self._epoch_lock:
                loss = self.model.train(epochs=1, stop=self._halt)
                self._dirty = True  # before a waiting stop() looks (it saves what was trained)
        except NoSamplesError:
            self.stop(save=False, reason="no samples")
            return None
        except SamplesChanged:
            # The samples kept changing under the epoch (a reload, an import): the next
            # epoch starts on them as they are then.
            log.info("the samples changed during the epoch; it starts again")
            return None
        if self.model.epochs == before:
            return None  # paused mid-epoch: a partial epoch's loss means nothing
        self._cycle_epochs += 1
        self._cycle_loss = float(loss)
        self.on_loss(LossEvent(float(loss), self.model.epochs, self.total_samples(), time.time()))
        last_save = self.store.last_save
        if last_save is None or time.monotonic() - last_save >= self.config.autosave_interval:
            self.save_if_dirty()
        reason = self._cycle_over(float(loss))
        if reason is not None:
            self.stop(save=True, reason=reason)
        return float(loss)

    def _cycle_over(self, loss: float) -> str | None:
        """Why the cycle ends after this epoch (see the module doc), or None."""
        config = self.config
        if config.epochs_per_cycle:
            return "epochs" if self._cycle_epochs >= config.epochs_per_cycle else None
        if config.until_stopped:
            return None
        return self._plateau.update(loss)
