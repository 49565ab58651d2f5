"""How good is the board's head? A validation estimate from the board's own samples.

Stratified k-fold cross-validation of the whole prediction path: for each fold, a fresh head is
made from the other folds exactly as on the board (imprinted when the head allows it, then
trained for as many epochs as the board's head was, capped), the open-set test is calibrated on
those same samples, and the fold's samples are classified, "unknown" included. No sample is ever
in the data its own prediction was made from.

Cost is bounded whatever the number of samples: at most :data:`MAX_FOLDS` folds, each head
trained on at most :data:`MAX_TRAIN` samples for at most :data:`MAX_EPOCHS` epochs (the
benchmark reports what that is at 1000 samples).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .classifier import Classifier, checked_bottleneck
from .head import Head
from .imprinting import Imprinter
from .open_set import Calibration, calibrate
from .samples import SampleSnapshot, class_sums

MAX_FOLDS = 5
MAX_EPOCHS = 10
MAX_TRAIN = 250
UNKNOWN = -1


@dataclass(frozen=True)
class Evaluation:
    """The estimate: accuracy, per-slot recall, confusion (true slot -> predicted slot or -1
    for unknown -> count), the share of held-out samples called unknown."""

    accuracy: float | None
    recall: dict[int, float | None]
    confusion: dict[int, dict[int, int]]
    unknown_rate: float | None
    samples: int  # held out and classified
    folds: int
    epochs: int
    seconds: float

    @property
    def method(self) -> str:
        """How it was estimated, in words."""
        if not self.folds:
            return "not enough samples (each class needs 2)"
        return f"{self.folds}-fold cross-validation, {self.epochs} epoch(s) per fold"


class Folds:
    """What a fold needs of the model: a fresh head from some samples, and probabilities under
    parameters that are not the board's."""

    def __init__(self, head: Head, classifier: Classifier, imprinter: Imprinter | None) -> None:
        """Heads start imprinted when ``imprinter`` is given, else at the bundle's initial."""
        self._head = head
        self._classifier = classifier
        self._imprinter = imprinter

    def fold_head(self, snapshot: SampleSnapshot, train: np.ndarray, epochs: int) -> tuple:
        """A head made from the samples ``train`` alone, as the board makes its own."""
        if self._imprinter is not None:
            start = self._imprinter.fold_head(snapshot, train)
        else:
            start = self._head.initial
        return self._head.fold_head(snapshot, train, epochs, start)

    def fold_probabilities(
        self, params: tuple, bottlenecks: Sequence[np.ndarray], active: np.ndarray
    ) -> np.ndarray:
        """Probabilities (n x slots) of ``bottlenecks`` under ``params``, masked to ``active``."""
        shape = self._classifier.bottleneck_shape
        checked = [checked_bottleneck(b, shape) for b in bottlenecks]
        return self._classifier.fold_probabilities(params, checked, active)


def stratified_folds(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per sample, classes spread evenly over the folds (-1: a class with a
    single sample, which is only ever used for training)."""
    assignment = np.full(len(labels), -1, dtype=np.int64)
    for slot in np.unique(labels):
        members = np.flatnonzero(labels == slot)
        if len(members) < 2:
            continue
        order = rng.permutation(members)
        assignment[order] = np.arange(len(order)) % folds
    return assignment


def evaluate(
    model: Folds,
    snapshot: SampleSnapshot,
    num_slots: int,
    epochs: int,
    rng: np.random.Generator,
) -> Evaluation:
    """Cross-validate the prediction path on ``snapshot`` (see the module doc)."""
    started = time.monotonic()
    labels = snapshot.labels
    counts = np.bincount(labels, minlength=num_slots) if len(labels) else np.zeros(num_slots)
    folds = int(min(MAX_FOLDS, counts.max(initial=0)))
    if folds < 2 or (counts >= 2).sum() < 1:
        return Evaluation(None, {}, {}, None, 0, 0, 0, time.monotonic() - started)
    epochs = min(max(int(epochs), 0), MAX_EPOCHS)
    assignment = stratified_folds(labels, folds, rng)
    confusion: dict[int, dict[int, int]] = {}
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        train = np.flatnonzero(assignment != fold)
        if not len(test) or not len(train):
            continue
        if len(train) > MAX_TRAIN:
            train = _stratified_subset(train, labels, MAX_TRAIN, rng)
        params = model.fold_head(snapshot, train, epochs)
        calibration = _calibration(snapshot, train, num_slots, rng)
        active = calibration.present
        probabilities = model.fold_probabilities(params, snapshot.subset(test).bottlenecks, active)
        for row, index in zip(probabilities, test, strict=True):
            truth = int(labels[index])
            known, _ = calibration.is_known(snapshot.bottlenecks[index])
            predicted = int(np.argmax(row)) if known and row.sum() > 0 else UNKNOWN
            cell = confusion.setdefault(truth, {})
            cell[predicted] = cell.get(predicted, 0) + 1
    total = sum(sum(row.values()) for row in confusion.values())
    correct = sum(row.get(truth, 0) for truth, row in confusion.items())
    unknown = sum(row.get(UNKNOWN, 0) for row in confusion.values())
    recall: dict[int, float | None] = {
        slot: (confusion[slot].get(slot, 0) / sum(confusion[slot].values()))
        if slot in confusion
        else None
        for slot in np.flatnonzero(counts).tolist()
    }
    return Evaluation(
        correct / total if total else None,
        recall,
        confusion,
        unknown / total if total else None,
        total,
        folds,
        epochs,
        time.monotonic() - started,
    )


def _stratified_subset(
    indices: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """At most ``size`` of ``indices``, every class keeping its share (and at least one)."""
    chosen = []
    share = size / len(indices)
    for slot in np.unique(labels[indices]):
        members = indices[labels[indices] == slot]
        take = max(1, int(round(len(members) * share)))
        chosen.append(rng.choice(members, min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def _calibration(
    snapshot: SampleSnapshot, train: np.ndarray, num_slots: int, rng: np.random.Generator
) -> Calibration:
    fold = snapshot.subset(train)
    rows, labels = fold.bottlenecks, fold.labels
    sums, counts = class_sums(rows, labels, num_slots)
    return calibrate(rows, labels, sums, counts, rng)
