"""Inference: an input -> the base model -> the head -> the classes ranked, and "unknown".

:meth:`Classifier.classify` adds the open-set test (open_set.py) to the head's answer: an input
far from every taught class is the unknown label with ``known`` False.

Threads: :meth:`Classifier.classify` and :meth:`Classifier.predict` may run in several threads
at once, and beside training. The base model and the inference model each have their lock (the
interpreter set's); the hand-over from one to the other holds both only for the copy, so a
second caller's base model can start while this one classifies. The class slots are read once
per call (the registry's copy-on-write mapping), so a class removed meanwhile cannot tear a
ranking. The open-set calibration is cached per sample version and replaced in one assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import bundle_format as fmt
from ..errors import ImageFormatError
from .class_registry import ClassRegistry
from .class_slots import SlotMask
from .head import Head, Parameters
from .interpreter_set import InterpreterSet
from .open_set import Calibration, calibrate, recentred
from .samples import Measured, SampleSet

UNKNOWN = "unknown"


class Prediction(NamedTuple):
    """One class and its probability; ``predict`` returns one per class, highest first."""

    class_name: str
    confidence: float


class Classification(NamedTuple):
    """What :meth:`Classifier.classify` says about one input."""

    class_name: str  # the taught class, or the unknown label
    confidence: float  # the class's probability (0 for unknown)
    scores: dict[str, float]  # every class's probability (classes without samples: 0)
    known: bool  # False: none of the taught classes
    similarity: float  # pooled cosine to the class the frame came nearest to (open_set.py)
    closest: str | None = None  # that class (also when unknown: "closest: cat")
    bottleneck: np.ndarray | None = None  # the frame's bottleneck (to keep it for review)


class Classifier:
    """Runs the base and inference models on inputs and decides known or unknown."""

    def __init__(
        self,
        interpreters: InterpreterSet,
        head: Head,
        samples: SampleSet,
        classes: ClassRegistry,
        bottleneck_shape: Sequence[int],
    ) -> None:
        """Classifies with ``head``'s parameters among ``classes`` that have ``samples``."""
        self._models = interpreters
        self._head = head
        self._samples = samples
        self._classes = classes
        self.bottleneck_shape = tuple(bottleneck_shape)
        self._mask: SlotMask = head.mask
        self._fed: tuple[Any, ...] | None = None  # (params, active) last written
        # (samples version, what it was measured on, calibration)
        self._calibration: tuple[int, Measured, Calibration] | None = None

    # --- running the models ---------------------------------------------------------------------

    def bottleneck(self, x: np.ndarray) -> np.ndarray:
        """The bottleneck of one preprocessed input."""
        return self._models.bottleneck(x, self.bottleneck_shape)

    def probabilities(self, x: np.ndarray, keep_bottleneck: bool) -> tuple[np.ndarray, Any]:
        """The head's probabilities per slot for one preprocessed input (and its bottleneck)."""
        models = self._models
        bottleneck = None
        models.base_lock.acquire()
        try:
            models.base.write(fmt.IMAGE, x)
            models.base.invoke()
            if keep_bottleneck:
                bottleneck = models.base.read(fmt.BOTTLENECK)
            models.inference_lock.acquire()
            try:
                models.base.copy_to(fmt.BOTTLENECK, models.inference, fmt.BOTTLENECK)
            except BaseException:
                models.inference_lock.release()
                raise
        finally:
            models.base_lock.release()
        try:
            probabilities = self._infer_locked()
        finally:
            models.inference_lock.release()
        return probabilities, bottleneck

    def bottleneck_probabilities(self, bottleneck: np.ndarray) -> np.ndarray:
        """The head's probabilities per slot for an already computed (checked) bottleneck."""
        with self._models.inference_lock:
            self._models.inference.write(
                fmt.BOTTLENECK, bottleneck.reshape(1, *self.bottleneck_shape)
            )
            return self._infer_locked()

    def _infer_locked(self) -> np.ndarray:
        params = self._head.params  # one read: the whole set comes from the same step
        active = self._classes.active(self._samples.counts())
        fed = self._fed
        inference = self._models.inference
        if fed is None or fed[0] is not params or not np.array_equal(fed[1], active):
            # Input tensors keep their contents between invokes, so the parameters are copied
            # in only when training replaced them or the active classes changed (~1 MB for a
            # 7x7x1280 softmax head).
            for i, p in enumerate(self._mask.masked(params, active)):
                inference.write(fmt.param(i), p)
            self._fed = (params, active)
        inference.invoke()
        return SlotMask.renormalised(inference.read(fmt.PROBABILITIES)[0], active)

    def fold_probabilities(
        self, params: Parameters, bottlenecks: Sequence[np.ndarray], active: np.ndarray
    ) -> np.ndarray:
        """Probabilities of (checked) ``bottlenecks`` under ``params``, not the head's own."""
        rows = []
        inference = self._models.inference
        with self._models.inference_lock:
            self._fed = None  # the head's own parameters are written again later
            for i, p in enumerate(self._mask.masked(params, active)):
                inference.write(fmt.param(i), p)
            for bottleneck in bottlenecks:
                inference.write(fmt.BOTTLENECK, bottleneck.reshape(1, *self.bottleneck_shape))
                inference.invoke()
                probs = inference.read(fmt.PROBABILITIES)[0]
                rows.append(SlotMask.renormalised(probs, active))
        return np.asarray(rows)

    # --- deciding -------------------------------------------------------------------------------

    def ranked(self, probabilities: np.ndarray) -> list[Prediction]:
        """One prediction per class, highest first (equal scores keep class order)."""
        slots = self._classes.slots  # one read: a consistent set of classes
        return _ranked(probabilities, slots)

    def decide(
        self,
        probabilities: np.ndarray,
        bottleneck: np.ndarray,
        unknown_label: str,
        current: bool = True,
    ) -> Classification:
        """The class, or ``unknown_label`` when the open-set test says none of them (see
        :meth:`open_set` for ``current``)."""
        slots = self._classes.slots
        ranked = _ranked(probabilities, slots)
        scores = {p.class_name: p.confidence for p in ranked}
        known, similarity, best = self.open_set(current).test(bottleneck)
        closest = slots.get(best) if best is not None else None
        if not known or not ranked or ranked[0].confidence <= 0.0:
            return Classification(
                unknown_label, 0.0, scores, False, similarity, closest, bottleneck
            )
        top = ranked[0]
        return Classification(
            top.class_name, top.confidence, scores, True, similarity, closest, bottleneck
        )

    def open_set(self, current: bool = True) -> Calibration:
        """The open-set test as calibrated on the current samples (cached until they change;
        measured again only when they changed enough, see ``samples.Measured``).

        ``current=False`` takes the last calibration even when the samples changed since (it
        is measured again by whoever changes them): the frame path never reads the database.
        """
        version = self._samples.version
        cached = self._calibration
        if cached is not None and (cached[0] == version or not current):
            return cached[2]
        slots = self._classes.slots
        sums, counts = self._samples.class_sums()
        counts[[s for s in range(len(counts)) if s not in slots]] = 0
        measured = self._samples.measured(list(slots))
        if cached is not None and cached[1].still_fits(measured):
            calibration = recentred(cached[2], sums, counts)
            measured = cached[1]
        else:
            calibration = self._samples.using_snapshot(
                lambda snapshot: calibrate(
                    snapshot.bottlenecks, snapshot.labels, sums, counts, shape=self.bottleneck_shape
                )
            )
        self._calibration = (version, measured, calibration)
        return calibration


def _ranked(probabilities: np.ndarray, slots: Mapping[int, str]) -> list[Prediction]:
    # Plain Python on a handful of floats: cheaper than numpy's per-call overhead. The sort is
    # stable, so equal scores keep class order.
    scores = probabilities.tolist()
    order = sorted(slots, key=scores.__getitem__, reverse=True)
    return [Prediction(slots[i], scores[i]) for i in order]


def checked_bottleneck(bottleneck: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``bottleneck`` as a float32 array of ``shape``; ImageFormatError when it is not one."""
    array = np.asarray(bottleneck)
    if array.shape not in (shape, (1, *shape)) or not np.issubdtype(array.dtype, np.floating):
        raise ImageFormatError(
            f"a bottleneck must be a float array of shape {list(shape)} (or with a batch of "
            f"1), got {array.dtype} {list(array.shape)}; compute it with bottleneck(image)"
        )
    return array.reshape(shape).astype(np.float32, copy=False)
