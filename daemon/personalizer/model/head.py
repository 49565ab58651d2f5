"""The trainable head: its parameters, the optimizer's state, and how training changes them.

Training follows the seed: each epoch shuffles the samples and runs batches of
``min(max_batch, n)`` samples, the last one overlapping the one before; each batch is one
``train_head`` and one ``optimizer`` run. Class slots without samples are masked
(class_slots.py). Adam's state is really fed and kept.

Threads: the parameters are one tuple of read-only arrays that a training step replaces with a
single assignment, so a prediction in another thread always uses a complete set from one step.
``step_lock`` serialises what changes them (a step, a reset, a restore); ``train_lock`` lets one
``train()`` run at a time. Lock order: train_lock before step_lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import numpy as np

from .. import bundle_format as fmt
from ..bundle_format import Manifest
from ..errors import NoSamplesError, NotImprintableError, SamplesChanged
from .batching import epoch_batches
from .class_slots import SlotMask, slots_from
from .head_state import HeadState
from .interpreter_set import InterpreterSet, frozen
from .samples import SNAPSHOT_ATTEMPTS, SampleSet, SampleSnapshot

LossCallback = Callable[[int, float], None]
Parameters = tuple[np.ndarray, ...]


class Head:
    """Parameters, optimizer state and counters of a bundle's head, and training on samples."""

    def __init__(
        self,
        manifest: Manifest,
        interpreters: InterpreterSet,
        samples: SampleSet,
        active: Callable[[], np.ndarray],
        rng: np.random.Generator,
    ) -> None:
        """A head at the bundle's initial parameters. ``active()`` says which slots train."""
        self._manifest = manifest
        self._models = interpreters
        self._samples = samples
        self._active = active
        self._rng = rng
        self.mask = SlotMask(manifest)
        self._state_mask = _StateMask(self.mask, manifest)
        self.step_lock = threading.Lock()
        self._train_lock = threading.Lock()
        self.initial = interpreters.initial_parameters()
        self.params: Parameters = self.initial
        # None: the optimizer interpreter's state inputs hold the current state (see _step).
        self._opt_state: Parameters | None = self.fresh_optimizer_state()
        self.steps = 0
        self.epochs = 0
        self.trained_version: int | None = None  # the samples' version the last epoch saw

    @property
    def imprintable(self) -> bool:
        """Whether the head is one dense softmax layer (weight imprinting applies)."""
        manifest = self._manifest
        features = int(np.prod(manifest.bottleneck_shape))
        shapes = [p.shape for p in manifest.parameters]
        return manifest.imprintable and shapes == [
            (features, manifest.num_classes),
            (manifest.num_classes,),
        ]

    def check_imprintable(self) -> None:
        """NotImprintableError unless the head is one dense softmax layer."""
        if not self.imprintable:
            shapes = [p.shape for p in self._manifest.parameters]
            raise NotImprintableError(
                f"the bundle's head ({self._manifest.head_kind}, parameters {shapes}) cannot be "
                "imprinted: only a single dense softmax layer over the bottleneck can; train it "
                "instead"
            )

    # --- state ----------------------------------------------------------------------------------

    def fresh_optimizer_state(self) -> Parameters:
        """The optimizer state of a head that has not been trained."""
        return tuple(
            frozen(np.full(s.shape, s.init, dtype=np.float32))
            for s in self._manifest.optimizer.state
        )

    def optimizer_state(self) -> Parameters:
        """The current optimizer state (read-only arrays), in the manifest's order."""
        with self.step_lock:
            return self._materialized_state()

    def _materialized_state(self) -> Parameters:
        """The optimizer state as arrays, read out of the interpreter if it lives there."""
        if self._opt_state is None:
            count = len(self._manifest.optimizer.state)
            optimizer = self._models.optimizer
            self._opt_state = tuple(frozen(optimizer.read(fmt.state(j))) for j in range(count))
        return self._opt_state

    def state(self, bundle_id: str) -> HeadState:
        """The head as it is now (one consistent set)."""
        with self.step_lock:
            state = self._materialized_state()
            return HeadState(bundle_id, self.params, state, self.steps, self.epochs)

    def fits(self, saved: HeadState) -> bool:
        """Whether ``saved``'s arrays have this bundle's shapes."""
        manifest = self._manifest
        return [tuple(a.shape) for a in saved.parameters] == [
            tuple(p.shape) for p in manifest.parameters
        ] and [tuple(a.shape) for a in saved.optimizer_state] == [
            tuple(s.shape) for s in manifest.optimizer.state
        ]

    def restore(self, saved: HeadState) -> bool:
        """Take a saved head (of the same bundle); False (nothing changed) when it does not fit."""
        if not self.fits(saved):
            return False
        with self.step_lock:
            self._opt_state = tuple(frozen(np.array(a, np.float32)) for a in saved.optimizer_state)
            self.steps = int(saved.steps)
            self.epochs = int(saved.epochs)
            self.params = tuple(frozen(np.array(a, np.float32)) for a in saved.parameters)
            self.trained_version = self._samples.version
        return True

    def reset(self) -> None:
        """The bundle's initial parameters and a fresh optimizer state."""
        with self.step_lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._opt_state = self.fresh_optimizer_state()
        self.steps = 0
        self.epochs = 0
        self.params = self.initial
        self.trained_version = None

    def set_untrained(self, params: Parameters) -> None:
        """Start again from ``params`` (imprinted): counters and optimizer state fresh."""
        with self.step_lock:
            self._reset_locked()
            self.params = params

    def reset_slots(self, slots: Sequence[int]) -> None:
        """Give ``slots`` the bundle's initial output weights and fresh optimizer state."""
        with self.step_lock:
            self.params = tuple(
                frozen(p) for p in self.mask.with_slots_from(self.params, self.initial, slots)
            )
            fresh = self.fresh_optimizer_state()
            state = self._materialized_state()
            if len(state) == len(fresh) and state:
                self._opt_state = self._state_mask.with_slots_from(state, fresh, slots)

    # --- training -------------------------------------------------------------------------------

    def train(
        self,
        epochs: int = 1,
        on_loss: LossCallback | None = None,
        stop: threading.Event | None = None,
    ) -> float:
        """Train ``epochs`` epochs on the samples (see the module doc); returns the mean loss of
        the last epoch run (partial if stopped; NaN if no batch ran). ``on_loss(epoch, loss)``
        follows each complete epoch; ``stop`` is checked before every batch. Samples added
        meanwhile join at the next epoch. NoSamplesError when there are none."""
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        max_batch = self._manifest.max_batch_size
        last = math.nan
        done = retries = 0
        with self._train_lock:
            while done < epochs:
                snapshot = self._samples.snapshot()
                self.check_trainable(len(snapshot))
                active = self._active()
                losses = []
                try:
                    for batch in epoch_batches(len(snapshot), max_batch, self._rng):
                        if stop is not None and stop.is_set():
                            break
                        losses.append(self._step(snapshot, batch, active))
                except SamplesChanged:
                    retries += 1  # a sample went while the epoch read it: again, on those left
                    if retries >= SNAPSHOT_ATTEMPTS:
                        raise
                    continue
                retries = 0
                if losses:
                    last = sum(losses) / len(losses)
                if len(losses) < _num_batches(len(snapshot), max_batch):
                    break
                self.epochs += 1
                self.trained_version = snapshot.version
                done += 1
                if on_loss is not None:
                    on_loss(self.epochs, last)
        return last

    def check_trainable(self, count: int) -> None:
        """NoSamplesError when ``count`` samples cannot make a batch of this bundle."""
        max_batch = self._manifest.max_batch_size
        if not count:
            raise NoSamplesError("there are no samples to train on: take a few of each class first")
        if not self._manifest.dynamic_batch and count < max_batch:
            raise NoSamplesError(
                f"this bundle trains on batches of exactly {max_batch} samples and there "
                f"are {count}; add more samples (or convert with a dynamic batch)"
            )

    def _feed(self, snapshot: SampleSnapshot, batch: np.ndarray, params: Parameters) -> float:
        """Run train_head on one batch with ``params`` (masked already); returns the loss."""
        capacity = self._manifest.num_classes
        labels = np.zeros((len(batch), capacity), dtype=np.float32)
        labels[np.arange(len(batch)), snapshot.labels[batch]] = 1.0
        head = self._models.train_head
        if self._manifest.dynamic_batch:
            head.resize_batch(len(batch))
        head.write_rows(fmt.BOTTLENECKS, snapshot.take(batch))
        head.write(fmt.LABELS, labels)
        for i, p in enumerate(params):
            head.write(fmt.param(i), p)
        head.invoke()
        return float(head.read(fmt.LOSS))

    def _pass_gradients(self, params: Parameters, active: np.ndarray) -> None:
        """Hand train_head's gradients (inactive slots zeroed) and ``params`` to the optimizer."""
        head, opt = self._models.train_head, self._models.optimizer
        for i, p in enumerate(params):
            opt.write(fmt.param(i), p)
            head.copy_to(fmt.grad(i), opt, fmt.grad(i))
        if not active.all():
            names = [fmt.grad(i) for i in range(len(params))]
            opt.modify(names, self.mask.zero_inactive, active)

    def _step(self, snapshot: SampleSnapshot, batch: np.ndarray, active: np.ndarray) -> float:
        """One ``train_head`` + ``optimizer`` run on the samples ``batch``; returns the loss."""
        opt = self._models.optimizer
        with self.step_lock:
            params = self.params
            loss = self._feed(snapshot, batch, self.mask.masked(params, active))
            self._pass_gradients(params, active)
            if self._opt_state is not None:  # set by reset, load, imprinting or an evaluation
                for j, state in enumerate(self._opt_state):
                    opt.write(fmt.state(j), state)
                self._opt_state = None
            opt.invoke()
            # Nothing outside training reads the optimizer state between steps, so it stays in
            # the interpreter: each output is copied straight back to its input (one memcpy, no
            # allocation), and optimizer_state()/state() read it out when asked.
            for j in range(len(self._manifest.optimizer.state)):
                opt.copy_to(fmt.new_state(j), opt, fmt.state(j))
            new_params = tuple(frozen(opt.read(fmt.new_param(i))) for i in range(len(params)))
            self.steps += 1
            self.params = new_params  # the one assignment readers see: a complete new set
        return loss

    # --- heads that are not the board's (evaluation folds) --------------------------------------

    def fold_head(
        self, snapshot: SampleSnapshot, train: np.ndarray, epochs: int, start: Parameters
    ) -> Parameters:
        """A head made from the samples ``train`` alone, from ``start``, as the board makes its
        own (this head's parameters are not touched)."""
        state = self.fresh_optimizer_state()
        counts = np.bincount(snapshot.labels[train], minlength=self._manifest.num_classes)
        active = counts > 0
        max_batch = self._manifest.max_batch_size
        params = start
        if not self._manifest.dynamic_batch and len(train) < max_batch:
            return params
        sub = snapshot.subset(train)
        for _ in range(epochs):
            for batch in epoch_batches(len(train), max_batch, self._rng):
                params, state = self._free_step(sub, batch, params, state, active)
        return params

    def _free_step(
        self,
        snapshot: SampleSnapshot,
        batch: np.ndarray,
        params: Parameters,
        state: Parameters,
        active: np.ndarray,
    ) -> tuple[Parameters, Parameters]:
        """A step on parameters that are not the head's (an evaluation fold's)."""
        opt = self._models.optimizer
        with self.step_lock:
            self._materialized_state()  # the head's own state leaves the interpreter first
            self._feed(snapshot, batch, self.mask.masked(params, active))
            self._pass_gradients(params, active)
            for j, value in enumerate(state):
                opt.write(fmt.state(j), value)
            opt.invoke()
            count = len(self._manifest.optimizer.state)
            new_state = tuple(opt.read(fmt.new_state(j)) for j in range(count))
            return tuple(opt.read(fmt.new_param(i)) for i in range(len(params))), new_state


class _StateMask:
    """The class columns of the optimizer state: its tensors mirror the parameters in order
    (Adam: ``m`` of each parameter, then ``v`` of each, then ``step``)."""

    def __init__(self, mask: SlotMask, manifest: Manifest) -> None:
        params = [tuple(p.shape) for p in manifest.parameters]
        self.axes: list[int | None] = []
        for j, spec in enumerate(manifest.optimizer.state):
            shape = tuple(spec.shape)
            i = j % len(params)
            if params[i] != shape:
                i = params.index(shape) if shape in params else -1
            self.axes.append(mask.axes[i] if i >= 0 else None)

    def with_slots_from(
        self, state: Sequence[np.ndarray], fresh: Sequence[np.ndarray], slots: Sequence[int]
    ) -> Parameters:
        """``state`` with the class columns of ``slots`` taken from ``fresh`` (a reset)."""
        return tuple(frozen(a) for a in slots_from(state, fresh, self.axes, slots))


def _num_batches(num_samples: int, max_batch: int) -> int:
    return math.ceil(num_samples / min(max_batch, num_samples))
