"""``TransferLearningModel``: the on-device half of model personalization.

The Python counterpart of the seed's Java ``TransferLearningModel``. It runs a bundle's five
models: ``bottleneck`` turns a frame into features, samples are stored as bottlenecks,
``train_head`` + ``optimizer`` train the head, and ``inference`` classifies.

Threads: ``predict`` may run in one thread while ``train`` runs in another. Each model has its
own interpreter and lock, so they really run in parallel (``invoke`` releases the GIL). The
trainable parameters are one tuple of numpy arrays that a training step replaces with a single
assignment, so a prediction always uses a complete set from one step, never a torn mix.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import bundle_format as fmt
from ..bundle_format import EDGETPU_BOTTLENECK
from ..errors import (
    ClassListError,
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    StateBundleMismatch,
    StateFileError,
    UnknownClassError,
)
from .batching import epoch_batches
from .bundle import Bundle, load_bundle
from .imprinting import imprinted_head
from .interpreters import (
    DELEGATES,
    default_num_threads,
    load_edgetpu_delegate,
    select_runtime,
)
from .preprocess import Fit, ImagePreprocessor
from .samples import SampleSnapshot, SampleStore
from .signature import SignatureModel
from .state_file import ModelState, read_state, write_state

LossCallback = Callable[[int, float], None]

# The head models (train_head, optimizer, inference, initialize) are small and memory-bound, and
# run beside the base model: on a busy 2-core board, a 2-thread train_head invoke measured 18 ms
# against 0.03 ms with one thread (tflite-runtime 2.14), the cost of waking a descheduled worker.
# So num_threads applies to the base model only.
HEAD_THREADS = 1


class Prediction(NamedTuple):
    """One class and its probability; ``predict`` returns one per class, highest first."""

    class_name: str
    confidence: float


class TransferLearningModel:
    """A personalizable image classifier backed by a bundle from ``tflite-transfer-convert``."""

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
    ) -> None:
        """Load and check the bundle and build one interpreter per model.

        Args:
            bundle_path: the bundle folder or its ``.zip``.
            classes: class names, as many as the bundle has classes (default: the manifest's).
            runtime: ``auto``, ``tflite_runtime``, ``ai_edge_litert`` or ``tensorflow``.
            num_threads: threads of the base model's interpreter (default: the cores, at most
                4); the head models always use one (see HEAD_THREADS).
            delegate: ``None`` (CPU) or ``"edgetpu"`` for the base model; when the Edge TPU
                library or device is missing, a warning is logged and the CPU is used.
            edgetpu_device: which Edge TPU (``"usb"``, ``"pci"``, ``":0"``, ``"usb:1"``);
                None takes the first one found.
            fit: how a non-square frame becomes square: ``crop`` (centre) or ``pad``.
            seed: seed of the shuffling between epochs (default: unpredictable).

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
        self._classes = _checked_classes(classes, manifest.class_names)
        self._class_index = {name: i for i, name in enumerate(self._classes)}
        self._runtime = select_runtime(runtime, manifest.requires_flex)
        self._threads = num_threads or default_num_threads()
        self._preprocess = ImagePreprocessor(*manifest.image_size, fit=fit)
        self._rng = np.random.default_rng(seed)

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
        self._inference_params: tuple[np.ndarray, ...] | None = None

        self._samples = SampleStore(manifest.num_classes)
        self._params: tuple[np.ndarray, ...] = ()
        # None: the optimizer interpreter's state inputs hold the current state (see _train_step).
        self._opt_state: tuple[np.ndarray, ...] | None = ()
        self._steps = 0
        self._epochs = 0
        self._reset_parameters()

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

    # --- description ----------------------------------------------------------------------------

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in the order of the model's outputs."""
        return self._classes

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
        """The base model's input shape ``(1, H, W, 3)``."""
        return self._bundle.manifest.input_shape

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

    # --- samples --------------------------------------------------------------------------------

    def bottleneck(self, image: Any) -> np.ndarray:
        """The bottleneck of ``image`` (see :meth:`add_sample` for accepted images)."""
        x = self._preprocess(image)
        with self._base_lock:
            self._base.write(fmt.IMAGE, x)
            self._base.invoke()
            return self._base.read(fmt.BOTTLENECK).reshape(self.bottleneck_shape)

    def add_sample(self, image: Any, class_name: str) -> int:
        """Store ``image`` as a sample of ``class_name`` and return the sample's id.

        ``image`` is an ``HxWx3`` uint8 RGB array of any size (centre-cropped or padded to a
        square and resized), a PIL image, or a float array already in the model's input form.
        The bottleneck is computed now and kept; the image is not.

        Raises:
            UnknownClassError: ``class_name`` is not one of :attr:`classes`.
            ImageFormatError: the image has a shape, dtype or range the model cannot take.
        """
        label = self._label(class_name)
        return self._samples.add(self.bottleneck(image), label)

    def add_sample_bottleneck(self, bottleneck: np.ndarray, class_name: str) -> int:
        """Store an already computed bottleneck (from :meth:`bottleneck`) as a sample."""
        label = self._label(class_name)
        return self._samples.add(self._checked_bottleneck(bottleneck).copy(), label)

    def samples(self) -> dict[str, int]:
        """The number of stored samples per class, in class order."""
        return dict(zip(self._classes, self._samples.counts(), strict=True))

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
        and one ``optimizer`` run. After each complete epoch, ``on_loss(epoch, loss)`` gets the
        model's epoch count and the mean loss over that epoch's batches. ``stop`` is checked
        before every batch; once set, training ends there. Samples added meanwhile join at the
        next epoch.

        Returns:
            The mean loss of the last epoch run (partial if stopped; NaN if no batch ran).

        Raises:
            NoSamplesError: there are no samples.
        """
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        max_batch = self._bundle.manifest.max_batch_size
        dynamic = self._bundle.manifest.dynamic_batch
        last = math.nan
        with self._train_lock:
            for _ in range(epochs):
                snapshot = self._samples.snapshot()
                if not len(snapshot):
                    raise NoSamplesError(
                        "cannot train without samples; add samples of at least one class first"
                    )
                if not dynamic and len(snapshot) < max_batch:
                    raise NoSamplesError(
                        f"this bundle trains on batches of exactly {max_batch} samples and there "
                        f"are {len(snapshot)}; add more samples (or convert with a dynamic batch)"
                    )
                losses = []
                for batch in epoch_batches(len(snapshot), max_batch, self._rng):
                    if stop is not None and stop.is_set():
                        break
                    losses.append(self._train_step(snapshot, batch))
                if losses:
                    last = sum(losses) / len(losses)
                if len(losses) < _num_batches(len(snapshot), max_batch):
                    break
                self._epochs += 1
                if on_loss is not None:
                    on_loss(self._epochs, last)
        return last

    def _train_step(self, snapshot: SampleSnapshot, batch: np.ndarray) -> float:
        """One ``train_head`` + ``optimizer`` run on the samples ``batch``; returns the loss."""
        labels = np.zeros((len(batch), len(self._classes)), dtype=np.float32)
        labels[np.arange(len(batch)), snapshot.labels[batch]] = 1.0
        head, opt = self._train_head, self._optimizer
        with self._step_lock:
            params = self._params
            if self._bundle.manifest.dynamic_batch:
                head.resize_batch(len(batch))
            head.write_rows(fmt.BOTTLENECKS, [snapshot.bottlenecks[i] for i in batch])
            head.write(fmt.LABELS, labels)
            for i, p in enumerate(params):
                head.write(fmt.param(i), p)
            head.invoke()
            loss = float(head.read(fmt.LOSS))
            for i, p in enumerate(params):
                opt.write(fmt.param(i), p)
                head.copy_to(fmt.grad(i), opt, fmt.grad(i))
            if self._opt_state is not None:  # set by reset, load or imprinting
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

    def initialize_from_samples(self) -> None:
        """Set the head to imprinted weights from the stored samples (see ``imprinting``).

        Makes predictions useful before any training. The optimizer state starts fresh, since
        its moments belonged to the replaced parameters.

        Raises:
            NotImprintableError: the bundle's head is not a single dense softmax layer.
            NoSamplesError: there are no samples.
        """
        manifest = self._bundle.manifest
        features = int(np.prod(manifest.bottleneck_shape))
        shapes = [p.shape for p in manifest.parameters]
        if not manifest.imprintable or shapes != [
            (features, manifest.num_classes),
            (manifest.num_classes,),
        ]:
            raise NotImprintableError(
                f"the bundle's head ({manifest.head_kind}, parameters {shapes}) cannot be "
                "imprinted: only a single dense softmax layer over the bottleneck can; train it "
                "instead"
            )
        snapshot = self._samples.snapshot()
        kernel, bias = imprinted_head(snapshot.bottlenecks, snapshot.labels, len(self._classes))
        with self._step_lock:
            self._opt_state = self._fresh_optimizer_state()
            self._steps = 0
            self._epochs = 0
            self._params = (_frozen(kernel), _frozen(bias))

    def reset_parameters(self) -> None:
        """Initialise the parameters and optimizer state again; samples are kept."""
        with self._step_lock:
            self._reset_parameters()

    def _reset_parameters(self) -> None:
        self._initialize.write(fmt.ZERO, np.float32(0.0))
        self._initialize.invoke()
        count = len(self._bundle.manifest.parameters)
        params = tuple(_frozen(self._initialize.read(fmt.param(i))) for i in range(count))
        self._opt_state = self._fresh_optimizer_state()
        self._steps = 0
        self._epochs = 0
        self._params = params

    def _fresh_optimizer_state(self) -> tuple[np.ndarray, ...]:
        return tuple(
            _frozen(np.full(s.shape, s.init, dtype=np.float32))
            for s in self._bundle.manifest.optimizer.state
        )

    # --- inference ------------------------------------------------------------------------------

    def predict(self, image: Any) -> list[Prediction]:
        """Classify ``image``: one :class:`Prediction` per class, highest confidence first.

        Accepts the same images as :meth:`add_sample`. Safe to call while :meth:`train` runs in
        another thread.
        """
        x = self._preprocess(image)
        # Hand over from the base to the inference interpreter with both locks held only for
        # the copy, so a second caller's base model can start while this one classifies.
        self._base_lock.acquire()
        try:
            self._base.write(fmt.IMAGE, x)
            self._base.invoke()
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
        return self._ranked(probabilities)

    def predict_bottleneck(self, bottleneck: np.ndarray) -> list[Prediction]:
        """Classify an already computed bottleneck (from :meth:`bottleneck`)."""
        bottleneck = self._checked_bottleneck(bottleneck)
        with self._inference_lock:
            self._inference.write(fmt.BOTTLENECK, bottleneck.reshape(1, *self.bottleneck_shape))
            probabilities = self._infer_locked()
        return self._ranked(probabilities)

    def _infer_locked(self) -> np.ndarray:
        params = self._params  # one read: the whole set comes from the same step
        if params is not self._inference_params:
            # Input tensors keep their contents between invokes, so the parameters are copied
            # in only when training has replaced them (~1 MB for a 7x7x1280 softmax head).
            for i, p in enumerate(params):
                self._inference.write(fmt.param(i), p)
            self._inference_params = params
        self._inference.invoke()
        return self._inference.read(fmt.PROBABILITIES)[0]

    def _ranked(self, probabilities: np.ndarray) -> list[Prediction]:
        # Plain Python on a handful of floats: cheaper than numpy's per-call overhead. The sort
        # is stable, so equal scores keep class order.
        scores = probabilities.tolist()
        order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        return [Prediction(self._classes[i], scores[i]) for i in order]

    # --- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write parameters, optimizer state, counters and samples to ``path`` atomically.

        The file is an ``.npz`` without pickled objects; ``save -> load -> save`` writes the
        same bytes. Safe to call while training (it waits for the current batch at most).
        """
        with self._step_lock:
            params, steps, epochs = self._params, self._steps, self._epochs
            state = self._materialized_state()
            snapshot = self._samples.snapshot()
            next_id = self._samples.next_id
        write_state(
            path,
            ModelState(
                bundle_id=self.bundle_id,
                classes=self._classes,
                bottleneck_shape=self.bottleneck_shape,
                parameters=params,
                optimizer_state=state,
                steps=steps,
                epochs=epochs,
                next_sample_id=next_id,
                sample_ids=snapshot.ids,
                sample_labels=snapshot.labels,
                sample_bottlenecks=snapshot.bottlenecks,
            ),
        )

    def load(self, path: str | Path) -> None:
        """Replace parameters, optimizer state, counters and samples with those saved at ``path``.

        Raises:
            StateFileNotFound: no file at ``path``.
            StateFileError: the file is truncated, corrupt or not a state file.
            StateBundleMismatch: the state was made for another bundle or other classes.
        """
        state = read_state(path, expect_bundle_id=self.bundle_id)
        self._check_state(path, state)
        with self._step_lock:
            self._samples.replace(
                state.sample_bottlenecks,
                state.sample_labels,
                state.sample_ids,
                state.next_sample_id,
            )
            self._opt_state = tuple(_frozen(a) for a in state.optimizer_state)
            self._steps = state.steps
            self._epochs = state.epochs
            self._params = tuple(_frozen(a) for a in state.parameters)

    def _check_state(self, path: str | Path, state: ModelState) -> None:
        manifest = self._bundle.manifest
        if state.classes != self._classes:
            raise StateBundleMismatch(
                f"{path} was saved for classes {list(state.classes)}, this model has "
                f"{list(self._classes)}; use the same class names (in the same order) or start "
                "fresh"
            )
        if state.bottleneck_shape != manifest.bottleneck_shape:
            raise StateFileError(
                f"{path}: bottleneck shape {list(state.bottleneck_shape)} is "
                f"not the bundle's {list(manifest.bottleneck_shape)}"
            )
        for kind, arrays, specs in (
            ("parameter", state.parameters, manifest.parameters),
            ("optimizer state", state.optimizer_state, manifest.optimizer.state),
        ):
            if len(arrays) != len(specs) or any(
                a.shape != s.shape for a, s in zip(arrays, specs, strict=False)
            ):
                raise StateFileError(
                    f"{path}: {kind} shapes {[list(a.shape) for a in arrays]} do not match the "
                    f"bundle's {[list(s.shape) for s in specs]}"
                )

    # --- input checks ---------------------------------------------------------------------------

    def _label(self, class_name: str) -> int:
        try:
            return self._class_index[class_name]
        except (KeyError, TypeError):
            raise UnknownClassError(
                f"unknown class {class_name!r}; the model's classes are {list(self._classes)}"
            ) from None

    def _checked_bottleneck(self, bottleneck: Any) -> np.ndarray:
        shape = self.bottleneck_shape
        array = np.asarray(bottleneck)
        if array.shape not in (shape, (1, *shape)) or not np.issubdtype(array.dtype, np.floating):
            raise ImageFormatError(
                f"a bottleneck must be a float array of shape {list(shape)} (or with a batch of "
                f"1), got {array.dtype} {list(array.shape)}; compute it with bottleneck(image)"
            )
        return array.reshape(shape).astype(np.float32, copy=False)


def _num_batches(num_samples: int, max_batch: int) -> int:
    return math.ceil(num_samples / min(max_batch, num_samples))


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only: parameter sets are shared between threads and never edited."""
    array.flags.writeable = False
    return array


def _checked_classes(
    classes: Sequence[str] | None, bundle_classes: Sequence[str]
) -> tuple[str, ...]:
    if classes is None:
        return tuple(bundle_classes)
    if isinstance(classes, str):
        raise ClassListError(f"classes must be a list of names, got the string {classes!r}")
    names = tuple(classes)
    if len(names) != len(bundle_classes):
        raise ClassListError(
            f"{len(names)} classes given ({list(names)}) but the bundle was converted for "
            f"{len(bundle_classes)}; give {len(bundle_classes)} names or convert with "
            f"--num_classes {len(names)}"
        )
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if bad:
        raise ClassListError(f"class names must be non-empty strings, got {bad!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassListError(f"class names must be unique, {duplicates} appear more than once")
    return names
