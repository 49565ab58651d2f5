"""What a runtime model is: its bundle, classes, runtime and training counters, read-only.

The description half of :class:`~.transfer_model.TransferLearningModel` (its base class): every
property reads one of the parts the model is made of (model/transfer_model.py's doc lists them).
"""

from __future__ import annotations

import numpy as np

from .bundle import Bundle
from .class_registry import ClassRegistry
from .head import Head
from .head_state import HeadState
from .interpreter_set import InterpreterSet
from .interpreters import InterpreterRuntime
from .samples import SampleSet


class ModelDescription:
    """Read-only facts about a model, from the parts a subclass builds in its constructor."""

    _bundle: Bundle
    _runtime: InterpreterRuntime
    _classes: ClassRegistry
    _models: InterpreterSet
    _head: Head
    _samples: SampleSet

    @property
    def classes(self) -> tuple[str, ...]:
        """The active class names, in slot order."""
        return self._classes.names

    @property
    def capacity(self) -> int:
        """How many classes the bundle has room for (its ``num_classes``)."""
        return self._classes.capacity

    def class_slots(self) -> dict[int, str]:
        """slot -> name of the active classes."""
        return dict(self._classes.slots)

    @property
    def class_registry(self) -> ClassRegistry:
        """The class registry (which slot a new class takes, names, checks)."""
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
        return self._models.delegate_active

    @property
    def steps(self) -> int:
        """Optimizer updates done since the parameters were (re)initialised."""
        return self._head.steps

    @property
    def epochs(self) -> int:
        """Complete training epochs since the parameters were (re)initialised."""
        return self._head.epochs

    @property
    def needs_training(self) -> bool:
        """True when the head was trained and the samples changed since its last epoch."""
        head = self._head
        return head.steps > 0 and head.trained_version != self._samples.version

    @property
    def imprintable(self) -> bool:
        """Whether the head is one dense softmax layer (weight imprinting applies)."""
        return self._head.imprintable

    @property
    def next_sample_id(self) -> int:
        """The id the next sample will get."""
        return self._samples.next_id

    def fits(self, saved: HeadState) -> bool:
        """Whether a saved head has this bundle's shapes."""
        return self._head.fits(saved)

    def parameters(self) -> tuple[np.ndarray, ...]:
        """The current parameters (read-only arrays of one consistent set)."""
        return self._head.params

    def optimizer_state(self) -> tuple[np.ndarray, ...]:
        """The current optimizer state (read-only arrays), in the manifest's order."""
        return self._head.optimizer_state()
