"""``TransferLearningModel``: the on-device half of model personalization.

The Python counterpart of the seed's Java ``TransferLearningModel``, and a small facade over
the parts that do the work, each in a module of its own:

- interpreter_set.py: one TFLite interpreter per model of the bundle (and the Edge TPU);
- class_registry.py: which class holds which of the bundle's class slots;
- samples.py: the stored bottlenecks (in memory, or read from the state database when used);
- head.py: the parameters and optimizer state, and training them;
- classifier.py: inference, and the open-set test that says "unknown" (open_set.py);
- imprinting.py, evaluation.py, persistence.py: a head from class means, a validation
  estimate, and ``save``/``load``.

Threads: ``predict``/``classify`` may run in one thread while ``train`` runs in another, and
classes and samples change from a third; the modules above say how each stays consistent.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StateFileError
from .bundle import Bundle, load_bundle
from .class_registry import ClassRegistry
from .classifier import UNKNOWN, Classification, Classifier, Prediction, checked_bottleneck
from .description import ModelDescription
from .evaluation import Evaluation, Folds, evaluate
from .head import Head, LossCallback
from .head_state import HeadState
from .imprinting import Imprinter
from .interpreter_set import InterpreterSet, frozen
from .interpreters import DELEGATES, default_num_threads, select_runtime
from .open_set import Calibration
from .persistence import load_model, save_model
from .preprocess import Fit, ImagePreprocessor, preprocessor_for
from .samples import DEFAULT_DTYPE, RowSource, SampleSet, SampleSnapshot

__all__ = ["UNKNOWN", "Classification", "Prediction", "TransferLearningModel"]


class TransferLearningModel(ModelDescription):
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
            num_threads: threads of the base model's interpreter (default: one less than the
                cores, 1 to 4); the head models always use one.
            delegate: ``None`` (CPU) or ``"edgetpu"`` for the base model; when the Edge TPU
                library or device is missing, a warning is logged and the CPU is used.
            edgetpu_device: which Edge TPU (``"usb"``, ``"pci"``, ``":0"``, ``"usb:1"``);
                None takes the first one found.
            fit: how a non-square frame becomes square: ``crop`` (centre) or ``pad``.
            seed: seed of the shuffling between epochs (default: unpredictable).
            sample_dtype: how stored bottlenecks are kept: float16 (default) or float32.

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
        names = manifest.class_names if classes is None else classes
        self._classes = ClassRegistry(manifest.num_classes, names)
        self._runtime = select_runtime(runtime, manifest.requires_flex)
        self._preprocess = preprocessor_for(manifest.input, fit=fit)
        self._rng = np.random.default_rng(seed)
        self._models = InterpreterSet(
            self._bundle, self._runtime, num_threads or default_num_threads(), delegate,
            edgetpu_device,
        )  # fmt: skip
        features = int(np.prod(manifest.bottleneck_shape))
        channels = manifest.bottleneck_shape[-1]
        self._samples = SampleSet(manifest.num_classes, features, sample_dtype, channels)
        self._head = Head(manifest, self._models, self._samples, self._active, self._rng)
        self._classifier = Classifier(
            self._models, self._head, self._samples, self._classes, manifest.bottleneck_shape
        )
        self._imprinter = Imprinter(self._samples, manifest.num_classes, self._rng)
        self._variety: tuple[int, dict[str, float | None]] = (-1, {})
        # The first invoke of an interpreter also prepares its kernels (XNNPACK packs the
        # weights): measured 20.9 ms per sample over the first 80 samples of a fresh pooled
        # model against 3.7 ms per prediction later. Doing it here keeps it out of the first
        # sample's or frame's time.
        self._classifier.bottleneck(np.zeros(manifest.input_shape, dtype=np.float32))

    def _active(self) -> np.ndarray:
        return self._classes.active(self._samples.counts())

    # --- classes --------------------------------------------------------------------------------

    def add_class(self, name: str) -> int:
        """Add a class in the first free slot and return the slot (ClassListError: the name is
        not usable or taken, or every slot is in use)."""
        slot = self._classes.add(name)
        self._head.reset_slots([slot])
        return slot

    def rename_class(self, old: str, new: str) -> None:
        """Give a class a new name; its samples and what was learnt stay."""
        self._classes.rename(old, new)

    def remove_class(self, name: str) -> int:
        """Remove a class with its samples; its slot is free again. Returns the samples removed."""
        slot = self._classes.slot_of(name)
        removed = self._samples.clear(slot)
        self._classes.remove(name)
        self._head.reset_slots([slot])
        return removed

    def set_classes(self, slots: Mapping[int, str]) -> None:
        """Replace the active classes (slot -> name); samples of dropped slots are removed."""
        for slot in self._classes.replace(slots):
            self._samples.clear(slot)

    # --- samples --------------------------------------------------------------------------------

    def bottleneck(self, image: Any) -> np.ndarray:
        """The bottleneck of ``image`` (see :meth:`add_sample` for accepted images)."""
        preprocess, shape = self._preprocess, self.bottleneck_shape
        return self._models.bottleneck_of(lambda view: preprocess.into(image, view), shape)

    def embed(self, image: Any, crop_size: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """The bottleneck of ``image`` and the square crop the model saw (uint8 RGB, at least
        ``crop_size`` pixels square; None for tensor bundles), e.g. to store it."""
        crop = self.crop(image, crop_size)
        return self.bottleneck(image if crop is None else crop), crop

    def crop(self, image: Any, size: int = 0) -> np.ndarray | None:
        """The square of ``image`` the model sees, as uint8 RGB at least ``size`` pixels square
        (None for tensor bundles): what to show or keep of a frame."""
        if not isinstance(self._preprocess, ImagePreprocessor):
            return None
        return self._preprocess.square(image, max(size, self._preprocess.height))

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
        slot = self._classes.slot_of(class_name)
        return self._samples.add(self.bottleneck(image), slot)

    def add_sample_bottleneck(
        self, bottleneck: np.ndarray, class_name: str, sample_id: int | None = None
    ) -> int:
        """Store an already computed bottleneck (from :meth:`bottleneck`) as a sample; with
        ``sample_id``, under that id (the daemon's state database gives them)."""
        slot = self._classes.slot_of(class_name)
        return self._samples.add(self._checked_bottleneck(bottleneck), slot, sample_id)

    def remove_sample(self, sample_id: int) -> str | None:
        """Forget one sample; returns its class (None: no such sample)."""
        return self._name(self._samples.remove(sample_id))

    def relabel_sample(self, sample_id: int, class_name: str) -> str | None:
        """Move one sample to ``class_name``; returns its old class (None: no such sample)."""
        return self._name(self._samples.relabel(sample_id, self._classes.slot_of(class_name)))

    def sample_class(self, sample_id: int) -> str | None:
        """The class of one sample (None: no such sample)."""
        return self._name(self._samples.label_of(sample_id))

    def _name(self, slot: int | None) -> str | None:
        return None if slot is None else self._classes.slots.get(slot)

    def restore_samples(
        self, ids: list[int], slots: list[int], bottlenecks: list[np.ndarray], next_id: int
    ) -> None:
        """Replace every sample (loading a saved state); slots must be active classes."""
        self._classes.check_slots(slots)
        shape = self.bottleneck_shape
        if any(tuple(b.shape) != shape for b in bottlenecks):
            raise StateFileError(f"stored bottlenecks are not of the bundle's shape {list(shape)}")
        self._samples.replace(bottlenecks, slots, ids, next_id)

    def attach_samples(
        self, source: RowSource, ids: list[int], slots: list[int], next_id: int
    ) -> None:
        """Replace every sample with those kept in ``source`` (the state database): only
        their ids, slots and class sums stay in memory; rows are read when used."""
        self._classes.check_slots(slots)
        self._samples.attach(source, slots, ids, next_id)

    def nearest_sample(
        self, bottleneck: np.ndarray, class_name: str, besides: int | None = None
    ) -> tuple[int, float] | None:
        """The sample of ``class_name`` (other than ``besides``) most like ``bottleneck``, and
        how alike they are (cosine of pooled features, see pooled.py); None: no other sample."""
        ids = [i for i in self.sample_ids(class_name) if i != besides]
        return self._samples.pooled.nearest(bottleneck, ids)

    def variety(self) -> dict[str, float | None]:
        """How varied each class's samples are (see pooled.py; None: fewer than two); measured
        again only after the samples changed."""
        version = self._samples.version  # before the work: a change meanwhile measures again
        measured, cached = self._variety
        if measured != version:
            snapshot = self._samples.snapshot()  # one, so a class removed meanwhile is no error
            of_slot: dict[int, list[int]] = {}
            for sample_id, slot in zip(snapshot.ids, snapshot.labels, strict=True):
                of_slot.setdefault(int(slot), []).append(int(sample_id))
            pooled = self._samples.pooled
            cached = {
                name: pooled.variety(of_slot.get(slot, ()))
                for slot, name in self._classes.slots.items()
            }
            self._variety = (version, cached)
        return dict(cached)

    def sample_ids(self, class_name: str | None = None) -> list[int]:
        """The ids of the samples (of ``class_name`` only, when given), oldest first."""
        snapshot = self._samples.snapshot()
        if class_name is None:
            return [int(i) for i in snapshot.ids]
        slot = self._classes.slot_of(class_name)
        return [
            int(i) for i, label in zip(snapshot.ids, snapshot.labels, strict=True) if label == slot
        ]

    def samples(self) -> dict[str, int]:
        """The number of stored samples per class, in class order."""
        counts = self._samples.counts()
        return {name: counts[slot] for slot, name in self._classes.slots.items()}

    def sample_snapshot(self) -> SampleSnapshot:
        """The samples as they are now (an immutable view)."""
        return self._samples.snapshot()

    def clear(self, class_name: str | None = None) -> int:
        """Forget samples; return how many were removed. With ``class_name`` only that class's
        go and the parameters stay; without it the model starts over (every sample goes, the
        parameters and optimizer state are initialised again, as after loading the bundle)."""
        if class_name is not None:
            return self._samples.clear(self._classes.slot_of(class_name))
        with self._head.step_lock:
            removed = self._samples.clear()
        self._head.reset()
        return removed

    # --- training -------------------------------------------------------------------------------

    def train(
        self,
        epochs: int = 1,
        on_loss: LossCallback | None = None,
        stop: threading.Event | None = None,
    ) -> float:
        """Train the head on the stored samples for ``epochs`` epochs (see head.py); returns
        the mean loss of the last epoch run. NoSamplesError when there are no samples."""
        return self._head.train(epochs, on_loss, stop)

    def initialize_from_samples(self) -> None:
        """Set the head to imprinted weights from the stored samples (see ``imprinting``), so
        predictions are useful before any training. The optimizer state starts fresh.

        Raises:
            NotImprintableError: the bundle's head is not a single dense softmax layer.
            NoSamplesError: there are no samples.
        """
        self._head.check_imprintable()
        kernel, bias = self._samples.using_snapshot(self._imprinter.head)
        self._head.set_untrained((frozen(kernel), frozen(bias)))

    def reset_parameters(self) -> None:
        """Initialise the parameters and optimizer state again; samples are kept."""
        self._head.reset()

    # --- inference ------------------------------------------------------------------------------

    def predict(self, image: Any) -> list[Prediction]:
        """Classify ``image``: one :class:`Prediction` per class, highest confidence first.

        Classes without samples are never predicted (confidence 0). Accepts the same images as
        :meth:`add_sample`. Safe to call while :meth:`train` runs in another thread.
        """
        probabilities, _ = self._classifier.probabilities(self._preprocess(image), False)
        return self._classifier.ranked(probabilities)

    def classify(
        self, image: Any, unknown_label: str = UNKNOWN, current: bool = True
    ) -> Classification:
        """Classify ``image`` and say whether it is one of the taught classes at all: an input
        far from every class's samples (open_set.py) is ``unknown_label`` with ``known``
        False. With no samples at all, everything is unknown. ``current=False`` (the camera
        path) uses the open-set test as last measured, without waiting to measure it again."""
        x = self._preprocess(image)
        probabilities, bottleneck = self._classifier.probabilities(x, True)
        return self._classifier.decide(probabilities, bottleneck, unknown_label, current)

    def classify_bottleneck(
        self, bottleneck: np.ndarray, unknown_label: str = UNKNOWN, current: bool = True
    ) -> Classification:
        """:meth:`classify` for an already computed bottleneck."""
        checked = self._checked_bottleneck(bottleneck)
        probabilities = self._classifier.bottleneck_probabilities(checked)
        return self._classifier.decide(probabilities, checked, unknown_label, current)

    def predict_bottleneck(self, bottleneck: np.ndarray) -> list[Prediction]:
        """Classify an already computed bottleneck (from :meth:`bottleneck`)."""
        checked = self._checked_bottleneck(bottleneck)
        return self._classifier.ranked(self._classifier.bottleneck_probabilities(checked))

    def open_set(self, current: bool = True) -> Calibration:
        """The open-set test as calibrated on the samples (cached until they change; with
        ``current=False`` as last measured, see Classifier.open_set)."""
        return self._classifier.open_set(current)

    # --- evaluation -----------------------------------------------------------------------------

    def evaluate(self) -> Evaluation:
        """Cross-validate classify() on the samples (see evaluation.py); slots are keys."""
        epochs = self.epochs if self.steps else 0
        folds = Folds(self._head, self._classifier, self._imprinter if self.imprintable else None)
        return self._samples.using_snapshot(
            lambda snapshot: evaluate(folds, snapshot, self.capacity, epochs, self._rng)
        )

    # --- persistence ----------------------------------------------------------------------------

    def head(self) -> HeadState:
        """The head as it is now: parameters, optimizer state and counters (one set)."""
        return self._head.state(self.bundle_id)

    def restore_head(self, saved: HeadState) -> bool:
        """Take a saved head; False (nothing changed) when it does not fit the bundle."""
        return saved.bundle_id == self.bundle_id and self._head.restore(saved)

    def save(self, path: str | Path) -> None:
        """Write classes, samples, parameters, optimizer state and counters to ``path``
        atomically (a state database; see persistence.py). ``save -> load`` gives bitwise-equal
        state. Safe to call while training (it waits for the current batch at most)."""
        save_model(self, path)

    def load(self, path: str | Path) -> None:
        """Replace classes, samples, parameters, optimizer state and counters with those saved
        at ``path`` (StateFileNotFound, StateFileError, StateBundleMismatch otherwise)."""
        load_model(self, path)

    def _checked_bottleneck(self, bottleneck: Any) -> np.ndarray:
        return checked_bottleneck(bottleneck, self.bottleneck_shape)
