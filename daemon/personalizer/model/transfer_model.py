"""``TransferLearningModel``: the on-device half of model personalization.

The Python counterpart of the seed's Java ``TransferLearningModel``. It runs a bundle's five
models: ``bottleneck`` turns a frame into features, samples are stored as bottlenecks,
``train_head`` + ``optimizer`` train the head, and ``inference`` classifies.

Classes live in the bundle's class slots (``num_classes`` is its capacity): classes can be
added, renamed and removed at run time, and slots without samples are masked (class_slots.py).
:meth:`classify` adds the open-set test (open_set.py): a frame that is none of the taught
classes is "unknown". :meth:`evaluate` cross-validates the whole path on the samples.

Threads: ``predict`` may run in one thread while ``train`` runs in another. Each model has its
own interpreter and lock, so they really run in parallel (``invoke`` releases the GIL). The
trainable parameters are one tuple of numpy arrays that a training step replaces with a single
assignment, so a prediction always uses a complete set from one step, never a torn mix.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import bundle_format as fmt
from ..bundle_format import EDGETPU_BOTTLENECK
from ..class_names import class_name_problem
from ..errors import (
    ClassListError,
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    SamplesChanged,
    StateFileError,
    UnknownClassError,
)
from ..store.database import Parameters
from .batching import epoch_batches
from .bundle import Bundle, load_bundle
from .class_slots import SlotMask
from .evaluation import Evaluation, evaluate
from .imprinting import imprint
from .interpreters import (
    DELEGATES,
    default_num_threads,
    load_edgetpu_delegate,
    select_runtime,
)
from .open_set import Calibration, calibrate, recentred
from .persistence import ModelState, read_model_state, write_model_state
from .preprocess import Fit, ImagePreprocessor, preprocessor_for
from .samples import (
    DEFAULT_DTYPE,
    SNAPSHOT_ATTEMPTS,
    Measured,
    RowSource,
    SampleSnapshot,
    SampleStore,
    class_sums,
)
from .signature import SignatureModel

LossCallback = Callable[[int, float], None]

# The head models (train_head, optimizer, inference, initialize) are small and memory-bound, and
# run beside the base model: on a busy 2-core board, a 2-thread train_head invoke measured 18 ms
# against 0.03 ms with one thread (tflite-runtime 2.14), the cost of waking a descheduled worker.
# So num_threads applies to the base model only.
HEAD_THREADS = 1
UNKNOWN = "unknown"


class Prediction(NamedTuple):
    """One class and its probability; ``predict`` returns one per class, highest first."""

    class_name: str
    confidence: float


class Classification(NamedTuple):
    """What :meth:`TransferLearningModel.classify` says about one input."""

    class_name: str  # the taught class, or the unknown label
    confidence: float  # the class's probability (0 for unknown)
    scores: dict[str, float]  # every class's probability (classes without samples: 0)
    known: bool  # False: none of the taught classes
    similarity: float  # cosine similarity to the nearest class's mean bottleneck


class TransferLearningModel:
    """A personalizable classifier backed by a bundle from ``tflite-transfer-convert``.

    Image bundles classify camera frames; tensor bundles (``manifest.input.kind == "tensor"``:
    sound, sensor vectors) classify float arrays of the bundle's input shape.
    """

    def __init__(
        self,
        bundle_path: str | Path,
        classes: Sequence[str] | None = None,
        *,
        runtime: str = "auto",
        num_threads: int | None = None,
        delegate: str | None = None,
        edgetpu_device: str | None = None,
        fit: Fit = "crop",
        seed: int | None = None,
        sample_dtype: Any = DEFAULT_DTYPE,
    ) -> None:
        """Load and check the bundle and build one interpreter per model.

        Args:
            bundle_path: the bundle folder or its ``.zip``.
            classes: class names, at most as many as the bundle has class slots (its
                ``num_classes``); default: the manifest's names.
            runtime: ``auto``, ``tflite_runtime``, ``ai_edge_litert`` or ``tensorflow``.
            num_threads: threads of the base model's interpreter (default: the cores, at most
                4); the head models always use one (see HEAD_THREADS).
            delegate: ``None`` (CPU) or ``"edgetpu"`` for the base model; when the Edge TPU
                library or device is missing, a warning is logged and the CPU is used.
            edgetpu_device: which Edge TPU (``"usb"``, ``"pci"``, ``":0"``, ``"usb:1"``);
                None takes the first one found.
            fit: how a non-square frame becomes square: ``crop`` (centre) or ``pad``
                (image bundles).
            seed: seed of the shuffling between epochs (default: unpredictable).
            sample_dtype: how stored bottlenecks are kept: float16 (default, half the memory)
                or float32.

        Raises:
            BundleError: (and subclasses) the bundle is missing, corrupt, or not format 1.
            FlexRequiredError: the bundle needs Flex and the runtime has none.
            RuntimeNotAvailable: the asked-for runtime is not installed.
            ClassListError: ``classes`` does not fit the bundle.
        """
        if delegate not in DELEGATES:
            raise ValueError(f"delegate must be None or 'edgetpu', got {delegate!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
        self._bundle: Bundle = load_bundle(bundle_path)
        manifest = self._bundle.manifest
        names = _checked_classes(classes, manifest.class_names)
        self._slots: dict[int, str] = dict(enumerate(names))
        self._runtime = select_runtime(runtime, manifest.requires_flex)
        self._threads = num_threads or default_num_threads()
        self._preprocess = preprocessor_for(manifest.input, fit=fit)
        self._rng = np.random.default_rng(seed)
        self._mask = SlotMask(manifest)

        self._base, self._delegate_active = self._base_model(delegate, edgetpu_device)
        self._inference = self._model("inference")
        batch_inputs = (fmt.BOTTLENECKS, fmt.LABELS) if manifest.dynamic_batch else ()
        self._train_head = self._model("train_head", batch_inputs)
        self._optimizer = self._model("optimizer")
        self._initialize = self._model("initialize")

        # Lock order, where two are held: base before inference.
        self._base_lock = threading.Lock()
        self._inference_lock = threading.Lock()
        self._step_lock = threading.Lock()  # train_head/optimizer and parameter updates
        self._train_lock = threading.Lock()  # one train() at a time
        self._inference_fed: tuple[Any, ...] | None = None  # (params, active) last written

        features = int(np.prod(manifest.bottleneck_shape))
        self._samples = SampleStore(manifest.num_classes, features, sample_dtype)
        # (samples version, what it was measured on, calibration); (measured on, scale).
        self._calibration: tuple[int, Measured, Calibration] | None = None
        self._imprint_scale: tuple[Measured, float] | None = None
        self._params: tuple[np.ndarray, ...] = ()
        # None: the optimizer interpreter's state inputs hold the current state (see _train_step).
        self._opt_state: tuple[np.ndarray, ...] | None = ()
        self._steps = 0
        self._epochs = 0
        self._initial = self._initial_parameters()
        self._reset_parameters()
        # The first invoke of an interpreter also prepares its kernels (XNNPACK packs the
        # weights): measured 20.9 ms per sample over the first 80 samples of a fresh pooled
        # model against 3.7 ms per prediction later. Doing it here keeps it out of the first
        # sample's or frame's time.
        self._bottleneck_of(np.zeros(manifest.input_shape, dtype=np.float32))

    # --- construction helpers -------------------------------------------------------------------

    def _model(
        self, name: str, batch_inputs: Sequence[str] = (), threads: int = HEAD_THREADS
    ) -> SignatureModel:
        interpreter = self._runtime.new_interpreter(self._bundle.model_bytes(name), threads)
        return SignatureModel(interpreter, self._bundle.manifest.models[name], batch_inputs)

    def _base_model(self, delegate: str | None, device: str | None) -> tuple[SignatureModel, bool]:
        spec = self._bundle.manifest.models[fmt.BOTTLENECK]
        if delegate == "edgetpu":
            loaded = load_edgetpu_delegate(self._runtime, device)
            if loaded is not None:
                # The Edge TPU runs only the compiled model; the plain one would stay on the CPU.
                name = (
                    EDGETPU_BOTTLENECK if self._bundle.has_file(EDGETPU_BOTTLENECK) else spec.file
                )
                interpreter = self._runtime.new_interpreter(
                    self._bundle.contents[name], self._threads, [loaded]
                )
                return SignatureModel(interpreter, spec), True
        return self._model(fmt.BOTTLENECK, threads=self._threads), False

    def _initial_parameters(self) -> tuple[np.ndarray, ...]:
        self._initialize.write(fmt.ZERO, np.float32(0.0))
        self._initialize.invoke()
        count = len(self._bundle.manifest.parameters)
        return tuple(_frozen(self._initialize.read(fmt.param(i))) for i in range(count))

    # --- description ----------------------------------------------------------------------------

    @property
    def classes(self) -> tuple[str, ...]:
        """The active class names, in slot order."""
        return tuple(self._slots[slot] for slot in sorted(self._slots))

    @property
    def capacity(self) -> int:
        """How many classes the bundle has room for (its ``num_classes``)."""
        return self._bundle.manifest.num_classes

    def class_slots(self) -> dict[int, str]:
        """slot -> name of the active classes."""
        return dict(sorted(self._slots.items()))

    @property
    def bundle_id(self) -> str:
        """The bundle's id; state files record it."""
        return self._bundle.bundle_id

    @property
    def bundle(self) -> Bundle:
        """The loaded bundle (manifest and file contents)."""
        return self._bundle

    @property
    def runtime_name(self) -> str:
        """The interpreter package in use (``tflite_runtime``, ``ai_edge_litert``, ...)."""
        return self._runtime.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The base model's input shape, batch of 1 included: ``(1, H, W, 3)`` for images."""
        return self._bundle.manifest.input_shape

    @property
    def input_kind(self) -> str:
        """``image`` (camera frames) or ``tensor`` (arrays of :attr:`input_shape`)."""
        return self._bundle.manifest.input.kind

    @property
    def bottleneck_shape(self) -> tuple[int, ...]:
        """The shape of one bottleneck (no batch dimension)."""
        return self._bundle.manifest.bottleneck_shape

    @property
    def delegate_active(self) -> bool:
        """Whether the base model runs on the Edge TPU (False: CPU, also after a fallback)."""
        return self._delegate_active

    @property
    def steps(self) -> int:
        """Optimizer updates done since the parameters were (re)initialised."""
        return self._steps

    @property
    def epochs(self) -> int:
        """Complete training epochs since the parameters were (re)initialised."""
        return self._epochs

    @property
    def imprintable(self) -> bool:
        """Whether the head is one dense softmax layer (weight imprinting applies)."""
        manifest = self._bundle.manifest
        features = int(np.prod(manifest.bottleneck_shape))
        shapes = [p.shape for p in manifest.parameters]
        return manifest.imprintable and shapes == [
            (features, manifest.num_classes),
            (manifest.num_classes,),
        ]

    def parameters(self) -> tuple[np.ndarray, ...]:
        """The current parameters (read-only arrays of one consistent set)."""
        return self._params

    def optimizer_state(self) -> tuple[np.ndarray, ...]:
        """The current optimizer state (read-only arrays), in the manifest's order."""
        with self._step_lock:
            return self._materialized_state()

    def _materialized_state(self) -> tuple[np.ndarray, ...]:
        """The optimizer state as arrays, read out of the interpreter if it lives there."""
        if self._opt_state is None:
            count = len(self._bundle.manifest.optimizer.state)
            self._opt_state = tuple(
                _frozen(self._optimizer.read(fmt.state(j))) for j in range(count)
            )
        return self._opt_state

    def _active(self) -> np.ndarray:
        """Slots that take part: a class with samples."""
        counts = np.asarray(self._samples.counts())
        active = counts > 0
        active[[s for s in range(self.capacity) if s not in self._slots]] = False
        return active

    # --- classes --------------------------------------------------------------------------------

    def add_class(self, name: str) -> int:
        """Add a class in the first free slot and return the slot.

        Raises:
            ClassListError: the name is not usable or taken, or every slot is in use.
        """
        _check_name(name)
        if name in self._slots.values():
            raise ClassListError(f"class {name!r} exists already")
        free = [slot for slot in range(self.capacity) if slot not in self._slots]
        if not free:
            raise ClassListError(
                f"all {self.capacity} class slots of the bundle are in use "
                f"({', '.join(self.classes)}); remove a class first, or convert a bundle with a "
                "larger --num_classes"
            )
        slot = free[0]
        self._reset_slots([slot])
        self._slots[slot] = name
        return slot

    def rename_class(self, old: str, new: str) -> None:
        """Give a class a new name; its samples and what was learnt stay."""
        slot = self._label(old)
        if new == old:
            return
        _check_name(new)
        if new in self._slots.values():
            raise ClassListError(f"class {new!r} exists already")
        self._slots[slot] = new

    def remove_class(self, name: str) -> int:
        """Remove a class with its samples; its slot is free again. Returns the samples removed."""
        slot = self._label(name)
        removed = self._samples.clear(slot)
        del self._slots[slot]
        self._reset_slots([slot])
        return removed

    def set_classes(self, slots: Mapping[int, str]) -> None:
        """Replace the active classes (slot -> name); samples of dropped slots are removed."""
        for slot, name in slots.items():
            if not 0 <= slot < self.capacity:
                raise ClassListError(f"slot {slot} is outside the bundle's {self.capacity} slots")
            _check_name(name)
        if len(set(slots.values())) != len(slots):
            raise ClassListError(f"class names must be unique, got {sorted(slots.values())}")
        for slot in set(self._slots) - set(slots):
            self._samples.clear(slot)
        self._slots = dict(sorted(slots.items()))

    def _reset_slots(self, slots: Sequence[int]) -> None:
        """Give ``slots`` the bundle's initial output weights and fresh optimizer state."""
        with self._step_lock:
            self._params = tuple(
                _frozen(p) for p in self._mask.with_slots_from(self._params, self._initial, slots)
            )
            fresh = self._fresh_optimizer_state()
            state = self._materialized_state()
            if len(state) == len(fresh) and state:
                state_mask = _StateMask(self._mask, self._bundle.manifest)
                self._opt_state = state_mask.with_slots_from(state, fresh, slots)

    # --- samples --------------------------------------------------------------------------------

    def bottleneck(self, image: Any) -> np.ndarray:
        """The bottleneck of ``image`` (see :meth:`add_sample` for accepted images)."""
        return self._bottleneck_of(self._preprocess(image))

    def _bottleneck_of(self, x: np.ndarray) -> np.ndarray:
        with self._base_lock:
            self._base.write(fmt.IMAGE, x)
            self._base.invoke()
            return self._base.read(fmt.BOTTLENECK).reshape(self.bottleneck_shape)

    def embed(self, image: Any, crop_size: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """The bottleneck of ``image`` and the square crop the model saw (uint8 RGB, at least
        ``crop_size`` pixels square; None for tensor bundles), e.g. to store it."""
        if not isinstance(self._preprocess, ImagePreprocessor):
            return self.bottleneck(image), None
        crop = self._preprocess.square(image, max(crop_size, self._preprocess.height))
        return self.bottleneck(crop), crop

    def add_sample(self, image: Any, class_name: str) -> int:
        """Store ``image`` as a sample of ``class_name`` and return the sample's id.

        ``image`` is an ``HxWx3`` uint8 RGB array of any size (centre-cropped or padded to a
        square and resized), a PIL image, or a float array already in the model's input form.
        For a tensor bundle it is a float array of :attr:`input_shape`, with or without the
        batch of 1. The bottleneck is computed now and kept; the input is not.

        Raises:
            UnknownClassError: ``class_name`` is not one of :attr:`classes`.
            ImageFormatError: the image has a shape, dtype or range the model cannot take.
        """
        label = self._label(class_name)
        return self._samples.add(self.bottleneck(image), label)

    def add_sample_bottleneck(
        self, bottleneck: np.ndarray, class_name: str, sample_id: int | None = None
    ) -> int:
        """Store an already computed bottleneck (from :meth:`bottleneck`) as a sample; with
        ``sample_id``, under that id (the daemon's state database gives them)."""
        label = self._label(class_name)
        return self._samples.add(self._checked_bottleneck(bottleneck), label, sample_id)

    def remove_sample(self, sample_id: int) -> str | None:
        """Forget one sample; returns its class (None: no such sample)."""
        slot = self._samples.remove(sample_id)
        return None if slot is None else self._slots.get(slot)

    def relabel_sample(self, sample_id: int, class_name: str) -> str | None:
        """Move one sample to ``class_name``; returns its old class (None: no such sample)."""
        slot = self._samples.relabel(sample_id, self._label(class_name))
        return None if slot is None else self._slots.get(slot)

    def sample_class(self, sample_id: int) -> str | None:
        """The class of one sample (None: no such sample)."""
        slot = self._samples.label_of(sample_id)
        return None if slot is None else self._slots.get(slot)

    def restore_samples(
        self, ids: list[int], slots: list[int], bottlenecks: list[np.ndarray], next_id: int
    ) -> None:
        """Replace every sample (loading a saved state); slots must be active classes."""
        unknown = sorted({s for s in slots if s not in self._slots})
        if unknown:
            raise StateFileError(f"samples of class slots {unknown}, which have no class")
        shape = self.bottleneck_shape
        if any(tuple(b.shape) != shape for b in bottlenecks):
            raise StateFileError(f"stored bottlenecks are not of the bundle's shape {list(shape)}")
        self._samples.replace(bottlenecks, slots, ids, next_id)

    def attach_samples(
        self, source: RowSource, ids: list[int], slots: list[int], next_id: int
    ) -> None:
        """Replace every sample with those kept in ``source`` (the state database): only
        their ids, slots and class sums stay in memory; rows are read when used."""
        unknown = sorted({s for s in slots if s not in self._slots})
        if unknown:
            raise StateFileError(f"samples of class slots {unknown}, which have no class")
        self._samples.attach(source, slots, ids, next_id)

    def samples(self) -> dict[str, int]:
        """The number of stored samples per class, in class order."""
        counts = self._samples.counts()
        return {self._slots[slot]: counts[slot] for slot in sorted(self._slots)}

    def clear(self, class_name: str | None = None) -> int:
        """Forget samples; return how many were removed.

        With ``class_name``, only that class's samples go and the parameters stay. Without it,
        the model starts over: every sample goes and the parameters and optimizer state are
        initialised again, as after loading the bundle.
        """
        if class_name is not None:
            return self._samples.clear(self._label(class_name))
        with self._step_lock:
            removed = self._samples.clear()
            self._reset_parameters()
        return removed

    # --- training -------------------------------------------------------------------------------

    def train(
        self,
        epochs: int = 1,
        on_loss: LossCallback | None = None,
        stop: threading.Event | None = None,
    ) -> float:
        """Train the head on the stored samples for ``epochs`` epochs.

        Each epoch shuffles the samples and runs batches of ``min(max_batch, n)`` samples, the
        last one overlapping the one before (the seed's rule); each batch is one ``train_head``
        and one ``optimizer`` run. Class slots without samples are masked. After each complete
        epoch, ``on_loss(epoch, loss)`` gets the model's epoch count and the mean loss over
        that epoch's batches. ``stop`` is checked before every batch; once set, training ends
        there. Samples added meanwhile join at the next epoch.

        Returns:
            The mean loss of the last epoch run (partial if stopped; NaN if no batch ran).

        Raises:
            NoSamplesError: there are no samples.
        """
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        max_batch = self._bundle.manifest.max_batch_size
        last = math.nan
        done = retries = 0
        with self._train_lock:
            while done < epochs:
                snapshot = self._samples.snapshot()
                self._check_trainable(len(snapshot))
                active = self._active()
                losses = []
                try:
                    for batch in epoch_batches(len(snapshot), max_batch, self._rng):
                        if stop is not None and stop.is_set():
                            break
                        losses.append(self._train_step(snapshot, batch, active))
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
                self._epochs += 1
                done += 1
                if on_loss is not None:
                    on_loss(self._epochs, last)
        return last

    def _check_trainable(self, count: int) -> None:
        max_batch = self._bundle.manifest.max_batch_size
        if not count:
            raise NoSamplesError(
                "cannot train without samples; add samples of at least one class first"
            )
        if not self._bundle.manifest.dynamic_batch and count < max_batch:
            raise NoSamplesError(
                f"this bundle trains on batches of exactly {max_batch} samples and there "
                f"are {count}; add more samples (or convert with a dynamic batch)"
            )

    def _feed_head(
        self, snapshot: SampleSnapshot, batch: np.ndarray, params: Sequence[np.ndarray]
    ) -> float:
        """Run train_head on one batch with ``params`` (masked already); returns the loss."""
        labels = np.zeros((len(batch), self.capacity), dtype=np.float32)
        labels[np.arange(len(batch)), snapshot.labels[batch]] = 1.0
        head = self._train_head
        if self._bundle.manifest.dynamic_batch:
            head.resize_batch(len(batch))
        head.write_rows(fmt.BOTTLENECKS, snapshot.take(batch))
        head.write(fmt.LABELS, labels)
        for i, p in enumerate(params):
            head.write(fmt.param(i), p)
        head.invoke()
        return float(head.read(fmt.LOSS))

    def _pass_gradients(self, params: Sequence[np.ndarray], active: np.ndarray) -> None:
        """Hand train_head's gradients (inactive slots zeroed) and ``params`` to the optimizer."""
        head, opt = self._train_head, self._optimizer
        for i, p in enumerate(params):
            opt.write(fmt.param(i), p)
            head.copy_to(fmt.grad(i), opt, fmt.grad(i))
        if not active.all():
            count = len(params)
            opt.modify([fmt.grad(i) for i in range(count)], self._mask.zero_inactive, active)

    def _train_step(self, snapshot: SampleSnapshot, batch: np.ndarray, active: np.ndarray) -> float:
        """One ``train_head`` + ``optimizer`` run on the samples ``batch``; returns the loss."""
        opt = self._optimizer
        with self._step_lock:
            params = self._params
            loss = self._feed_head(snapshot, batch, self._mask.masked(params, active))
            self._pass_gradients(params, active)
            if self._opt_state is not None:  # set by reset, load, imprinting or an evaluation
                for j, state in enumerate(self._opt_state):
                    opt.write(fmt.state(j), state)
                self._opt_state = None
            opt.invoke()
            # Nothing outside training reads the optimizer state between steps, so it stays in
            # the interpreter: each output is copied straight back to its input (one memcpy, no
            # allocation), and optimizer_state()/save() read it out when asked.
            for j in range(len(self._bundle.manifest.optimizer.state)):
                opt.copy_to(fmt.new_state(j), opt, fmt.state(j))
            new_params = tuple(_frozen(opt.read(fmt.new_param(i))) for i in range(len(params)))
            self._steps += 1
            self._params = new_params  # the one assignment readers see: a complete new set
        return loss

    def _free_step(
        self,
        snapshot: SampleSnapshot,
        batch: np.ndarray,
        params: tuple[np.ndarray, ...],
        state: tuple[np.ndarray, ...],
        active: np.ndarray,
    ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """A step on parameters that are not the model's (an evaluation fold's)."""
        opt = self._optimizer
        with self._step_lock:
            self._materialized_state()  # the model's own state leaves the interpreter first
            self._feed_head(snapshot, batch, self._mask.masked(params, active))
            self._pass_gradients(params, active)
            for j, value in enumerate(state):
                opt.write(fmt.state(j), value)
            opt.invoke()
            count = len(self._bundle.manifest.optimizer.state)
            new_state = tuple(opt.read(fmt.new_state(j)) for j in range(count))
            return tuple(opt.read(fmt.new_param(i)) for i in range(len(params))), new_state

    def initialize_from_samples(self) -> None:
        """Set the head to imprinted weights from the stored samples (see ``imprinting``).

        Makes predictions useful before any training. The optimizer state starts fresh, since
        its moments belonged to the replaced parameters. Costs the same whatever the number of
        samples (class means are kept as running sums).

        Raises:
            NotImprintableError: the bundle's head is not a single dense softmax layer.
            NoSamplesError: there are no samples.
        """
        if not self.imprintable:
            manifest = self._bundle.manifest
            shapes = [p.shape for p in manifest.parameters]
            raise NotImprintableError(
                f"the bundle's head ({manifest.head_kind}, parameters {shapes}) cannot be "
                "imprinted: only a single dense softmax layer over the bottleneck can; train it "
                "instead"
            )
        params = self._samples.using_snapshot(lambda snapshot: self._imprinted(snapshot, None))
        with self._step_lock:
            self._opt_state = self._fresh_optimizer_state()
            self._steps = 0
            self._epochs = 0
            self._params = params

    def _imprinted(
        self, snapshot: SampleSnapshot, subset: np.ndarray | None
    ) -> tuple[np.ndarray, ...]:
        scale = None
        if subset is None:
            sums, counts = self._samples.class_sums()
            rows, labels = snapshot.bottlenecks, snapshot.labels
            measured = self._samples.measured()
            cached = self._imprint_scale
            if cached is not None and cached[0].still_fits(measured):
                scale = cached[1]
        else:
            fold = snapshot.subset(subset)
            rows, labels = fold.bottlenecks, fold.labels
            sums, counts = class_sums(rows, labels, self.capacity)
        made = imprint(sums, counts, rows, labels, self._rng, scale=scale)
        if subset is None and scale is None:
            self._imprint_scale = (measured, made.scale)
        return (_frozen(made.kernel), _frozen(made.bias))

    def reset_parameters(self) -> None:
        """Initialise the parameters and optimizer state again; samples are kept."""
        with self._step_lock:
            self._reset_parameters()

    def _reset_parameters(self) -> None:
        self._opt_state = self._fresh_optimizer_state()
        self._steps = 0
        self._epochs = 0
        self._params = self._initial

    def _fresh_optimizer_state(self) -> tuple[np.ndarray, ...]:
        return tuple(
            _frozen(np.full(s.shape, s.init, dtype=np.float32))
            for s in self._bundle.manifest.optimizer.state
        )

    # --- inference ------------------------------------------------------------------------------

    def predict(self, image: Any) -> list[Prediction]:
        """Classify ``image``: one :class:`Prediction` per class, highest confidence first.

        Classes without samples are never predicted (confidence 0). Accepts the same images as
        :meth:`add_sample`. Safe to call while :meth:`train` runs in another thread.
        """
        probabilities, _ = self._infer(self._preprocess(image), keep_bottleneck=False)
        return self._ranked(probabilities)

    def classify(self, image: Any, unknown_label: str = UNKNOWN) -> Classification:
        """Classify ``image`` and say whether it is one of the taught classes at all.

        The class is the head's best; an input whose bottleneck is far from every class's
        samples (open_set.py) is ``unknown_label`` with ``known`` False. With no samples at
        all, everything is unknown.
        """
        probabilities, bottleneck = self._infer(self._preprocess(image), keep_bottleneck=True)
        return self._decide(probabilities, bottleneck, unknown_label)

    def classify_bottleneck(self, bottleneck: np.ndarray, unknown_label: str = UNKNOWN):
        """:meth:`classify` for an already computed bottleneck."""
        bottleneck = self._checked_bottleneck(bottleneck)
        with self._inference_lock:
            self._inference.write(fmt.BOTTLENECK, bottleneck.reshape(1, *self.bottleneck_shape))
            probabilities = self._infer_locked()
        return self._decide(probabilities, bottleneck, unknown_label)

    def _decide(
        self, probabilities: np.ndarray, bottleneck: np.ndarray, unknown_label: str
    ) -> Classification:
        ranked = self._ranked(probabilities)
        scores = {p.class_name: p.confidence for p in ranked}
        known, similarity = self.open_set().is_known(bottleneck)
        if not known or not ranked or ranked[0].confidence <= 0.0:
            return Classification(unknown_label, 0.0, scores, False, similarity)
        top = ranked[0]
        return Classification(top.class_name, top.confidence, scores, True, similarity)

    def open_set(self) -> Calibration:
        """The open-set test as calibrated on the current samples (cached until they change;
        measured again only when they changed enough, see ``samples.Measured``)."""
        version = self._samples.version
        cached = self._calibration
        if cached is not None and cached[0] == version:
            return cached[2]
        sums, counts = self._samples.class_sums()
        counts[[s for s in range(self.capacity) if s not in self._slots]] = 0
        measured = self._samples.measured(list(self._slots))
        if cached is not None and cached[1].still_fits(measured):
            calibration = recentred(cached[2], sums, counts)
            measured = cached[1]
        else:
            calibration = self._samples.using_snapshot(
                lambda snapshot: calibrate(snapshot.bottlenecks, snapshot.labels, sums, counts)
            )
        self._calibration = (version, measured, calibration)
        return calibration

    def _infer(self, x: np.ndarray, keep_bottleneck: bool) -> tuple[np.ndarray, np.ndarray | None]:
        # Hand over from the base to the inference interpreter with both locks held only for
        # the copy, so a second caller's base model can start while this one classifies.
        bottleneck = None
        self._base_lock.acquire()
        try:
            self._base.write(fmt.IMAGE, x)
            self._base.invoke()
            if keep_bottleneck:
                bottleneck = self._base.read(fmt.BOTTLENECK)
            self._inference_lock.acquire()
            try:
                self._base.copy_to(fmt.BOTTLENECK, self._inference, fmt.BOTTLENECK)
            except BaseException:
                self._inference_lock.release()
                raise
        finally:
            self._base_lock.release()
        try:
            probabilities = self._infer_locked()
        finally:
            self._inference_lock.release()
        return probabilities, bottleneck

    def predict_bottleneck(self, bottleneck: np.ndarray) -> list[Prediction]:
        """Classify an already computed bottleneck (from :meth:`bottleneck`)."""
        bottleneck = self._checked_bottleneck(bottleneck)
        with self._inference_lock:
            self._inference.write(fmt.BOTTLENECK, bottleneck.reshape(1, *self.bottleneck_shape))
            probabilities = self._infer_locked()
        return self._ranked(probabilities)

    def _infer_locked(self) -> np.ndarray:
        params = self._params  # one read: the whole set comes from the same step
        active = self._active()
        fed = self._inference_fed
        if fed is None or fed[0] is not params or not np.array_equal(fed[1], active):
            # Input tensors keep their contents between invokes, so the parameters are copied
            # in only when training replaced them or the active classes changed (~1 MB for a
            # 7x7x1280 softmax head).
            for i, p in enumerate(self._mask.masked(params, active)):
                self._inference.write(fmt.param(i), p)
            self._inference_fed = (params, active)
        self._inference.invoke()
        return SlotMask.renormalised(self._inference.read(fmt.PROBABILITIES)[0], active)

    def _ranked(self, probabilities: np.ndarray) -> list[Prediction]:
        # Plain Python on a handful of floats: cheaper than numpy's per-call overhead. The sort
        # is stable, so equal scores keep class order.
        scores = probabilities.tolist()
        slots = sorted(self._slots)
        order = sorted(slots, key=scores.__getitem__, reverse=True)
        return [Prediction(self._slots[i], scores[i]) for i in order]

    # --- evaluation -----------------------------------------------------------------------------

    def evaluate(self) -> Evaluation:
        """Cross-validate classify() on the samples (see evaluation.py); slots are keys."""
        epochs = self._epochs if self._steps else 0
        return self._samples.using_snapshot(
            lambda snapshot: evaluate(self, snapshot, self.capacity, epochs, self._rng)
        )

    def fold_head(
        self, snapshot: SampleSnapshot, train: np.ndarray, epochs: int
    ) -> tuple[np.ndarray, ...]:
        """A head made from the samples ``train`` alone, as the board makes its own."""
        params = self._imprinted(snapshot, train) if self.imprintable else self._initial
        state = self._fresh_optimizer_state()
        counts = np.bincount(snapshot.labels[train], minlength=self.capacity)
        active = counts > 0
        max_batch = self._bundle.manifest.max_batch_size
        if not self._bundle.manifest.dynamic_batch and len(train) < max_batch:
            return params
        sub = snapshot.subset(train)
        for _ in range(epochs):
            for batch in epoch_batches(len(train), max_batch, self._rng):
                params, state = self._free_step(sub, batch, params, state, active)
        return params

    def fold_probabilities(
        self, params: tuple, bottlenecks: Sequence[np.ndarray], active: np.ndarray
    ) -> np.ndarray:
        """Probabilities of ``bottlenecks`` under ``params`` (not the model's own)."""
        rows = []
        with self._inference_lock:
            self._inference_fed = None  # the model's own parameters are written again later
            for i, p in enumerate(self._mask.masked(params, active)):
                self._inference.write(fmt.param(i), p)
            for bottleneck in bottlenecks:
                x = self._checked_bottleneck(bottleneck).reshape(1, *self.bottleneck_shape)
                self._inference.write(fmt.BOTTLENECK, x)
                self._inference.invoke()
                probs = self._inference.read(fmt.PROBABILITIES)[0]
                rows.append(SlotMask.renormalised(probs, active))
        return np.asarray(rows)

    # --- persistence ----------------------------------------------------------------------------

    def head(self) -> Parameters:
        """The head as it is now: parameters, optimizer state and counters (one set)."""
        with self._step_lock:
            return Parameters(
                self.bundle_id,
                self._params,
                self._materialized_state(),
                self._steps,
                self._epochs,
            )

    def restore_head(self, saved: Parameters) -> bool:
        """Take a saved head; False (nothing changed) when it does not fit the bundle."""
        manifest = self._bundle.manifest
        fits = [tuple(a.shape) for a in saved.parameters] == [
            tuple(p.shape) for p in manifest.parameters
        ] and [tuple(a.shape) for a in saved.optimizer_state] == [
            tuple(s.shape) for s in manifest.optimizer.state
        ]
        if not fits or saved.bundle_id != self.bundle_id:
            return False
        with self._step_lock:
            self._opt_state = tuple(_frozen(np.array(a, np.float32)) for a in saved.optimizer_state)
            self._steps = int(saved.steps)
            self._epochs = int(saved.epochs)
            self._params = tuple(_frozen(np.array(a, np.float32)) for a in saved.parameters)
        return True

    def save(self, path: str | Path) -> None:
        """Write classes, samples, parameters, optimizer state and counters to ``path``
        atomically (a state database; see persistence.py). ``save -> load`` gives bitwise-equal
        state. Safe to call while training (it waits for the current batch at most)."""
        head = self.head()
        snapshot = self._samples.snapshot()
        write_model_state(
            path,
            ModelState(
                bundle_id=self.bundle_id,
                bottleneck_shape=self.bottleneck_shape,
                classes=self.class_slots(),
                ids=[int(i) for i in snapshot.ids],
                slots=[int(s) for s in snapshot.labels],
                bottlenecks=snapshot.bottlenecks,
                next_id=self._samples.next_id,
                head=head,
            ),
        )

    def load(self, path: str | Path) -> None:
        """Replace classes, samples, parameters, optimizer state and counters with those saved
        at ``path``.

        Raises:
            StateFileNotFound: no file at ``path``.
            StateFileError: the file is truncated, corrupt, not a state file, or does not fit.
            StateBundleMismatch: the state was made for another bundle.
        """
        state = read_model_state(path, self.bundle_id)
        if state.ids and tuple(state.bottleneck_shape) != tuple(self.bottleneck_shape):
            raise StateFileError(
                f"{path}: bottleneck shape {list(state.bottleneck_shape)} is not the bundle's "
                f"{list(self.bottleneck_shape)}"
            )
        if state.head is not None and not self._head_fits(state.head):
            raise StateFileError(
                f"{path}: parameter shapes {[list(a.shape) for a in state.head.parameters]} do "
                "not match the bundle's"
            )
        self.set_classes(state.classes)
        self.restore_samples(state.ids, state.slots, state.bottlenecks, state.next_id)
        if state.head is not None:
            self.restore_head(state.head)
        else:
            self.reset_parameters()

    def _head_fits(self, saved: Parameters) -> bool:
        manifest = self._bundle.manifest
        return [tuple(a.shape) for a in saved.parameters] == [
            tuple(p.shape) for p in manifest.parameters
        ] and [tuple(a.shape) for a in saved.optimizer_state] == [
            tuple(s.shape) for s in manifest.optimizer.state
        ]

    # --- input checks ---------------------------------------------------------------------------

    def _label(self, class_name: str) -> int:
        for slot, name in self._slots.items():
            if name == class_name:
                return slot
        raise UnknownClassError(
            f"unknown class {class_name!r}; the model's classes are {list(self.classes)}"
        )

    def _checked_bottleneck(self, bottleneck: Any) -> np.ndarray:
        shape = self.bottleneck_shape
        array = np.asarray(bottleneck)
        if array.shape not in (shape, (1, *shape)) or not np.issubdtype(array.dtype, np.floating):
            raise ImageFormatError(
                f"a bottleneck must be a float array of shape {list(shape)} (or with a batch of "
                f"1), got {array.dtype} {list(array.shape)}; compute it with bottleneck(image)"
            )
        return array.reshape(shape).astype(np.float32, copy=False)


class _StateMask:
    """The class columns of the optimizer state: its tensors mirror the parameters in order
    (Adam: ``m`` of each parameter, then ``v`` of each, then ``step``)."""

    def __init__(self, mask: SlotMask, manifest: Any) -> None:
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
    ) -> tuple[np.ndarray, ...]:
        chosen = np.asarray(list(slots), dtype=np.int64)
        out = []
        for axis, value, new in zip(self.axes, state, fresh, strict=True):
            if axis is None:
                out.append(value)
                continue
            copy = np.array(value, dtype=np.float32, copy=True)
            where: list[Any] = [slice(None)] * copy.ndim
            where[axis] = chosen
            copy[tuple(where)] = np.asarray(new)[tuple(where)]
            out.append(_frozen(copy))
        return tuple(out)


def _num_batches(num_samples: int, max_batch: int) -> int:
    return math.ceil(num_samples / min(max_batch, num_samples))


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only: parameter sets are shared between threads and never edited."""
    array.flags.writeable = False
    return array


def _check_name(name: Any) -> None:
    reason = class_name_problem(name)
    if reason:
        raise ClassListError(f"class name {name!r} {reason}")


def _checked_classes(
    classes: Sequence[str] | None, bundle_classes: Sequence[str]
) -> tuple[str, ...]:
    if classes is None:
        return tuple(bundle_classes)
    if isinstance(classes, str):
        raise ClassListError(f"classes must be a list of names, got the string {classes!r}")
    names = tuple(classes)
    if len(names) > len(bundle_classes):
        raise ClassListError(
            f"{len(names)} classes given ({list(names)}) but the bundle has room for "
            f"{len(bundle_classes)} (its --num_classes); give at most {len(bundle_classes)} "
            f"names or convert with --num_classes {len(names)} or more"
        )
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if bad:
        raise ClassListError(f"class names must be non-empty strings, got {bad!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassListError(f"class names must be unique, {duplicates} appear more than once")
    return names
