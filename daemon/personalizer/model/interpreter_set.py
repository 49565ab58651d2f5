"""The interpreter set: one TFLite interpreter per model of a bundle, and the lock of each.

The base model (``bottleneck``) gets the configured thread count and, when asked for and
available, the Edge TPU delegate; the head models (``inference``, ``train_head``, ``optimizer``,
``initialize``) always get one thread: they are small and memory-bound and run beside the base
model, and on a busy 2-core board a 2-thread ``train_head`` invoke measured 18 ms against 0.03 ms
with one thread (tflite-runtime 2.14), the cost of waking a descheduled worker.

Each interpreter is used by one thread at a time: its owner holds its lock around every use.
Where two are held, the base model's lock comes first (the hand-over of a bottleneck from the
base to the inference model), then the inference model's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import bundle_format as fmt
from ..bundle_format import EDGETPU_BOTTLENECK
from .bundle import Bundle
from .interpreters import InterpreterRuntime, load_edgetpu_delegate
from .signature import SignatureModel

HEAD_THREADS = 1


class InterpreterSet:
    """The five models of one bundle, ready to invoke."""

    def __init__(
        self,
        bundle: Bundle,
        runtime: InterpreterRuntime,
        threads: int,
        delegate: str | None = None,
        edgetpu_device: str | None = None,
    ) -> None:
        """Build every interpreter (allocating its tensors) for ``bundle`` on ``runtime``."""
        self._bundle = bundle
        self._runtime = runtime
        self.threads = threads
        self.base, self.delegate_active = self._base_model(delegate, edgetpu_device)
        manifest = bundle.manifest
        self.inference = self._model("inference")
        batch_inputs = (fmt.BOTTLENECKS, fmt.LABELS) if manifest.dynamic_batch else ()
        self.train_head = self._model("train_head", batch_inputs)
        self.optimizer = self._model("optimizer")
        self.initialize = self._model("initialize")
        self.base_lock = threading.Lock()
        self.inference_lock = threading.Lock()

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
                has_compiled = self._bundle.has_file(EDGETPU_BOTTLENECK)
                name = EDGETPU_BOTTLENECK if has_compiled else spec.file
                interpreter = self._runtime.new_interpreter(
                    self._bundle.contents[name], self.threads, [loaded]
                )
                return SignatureModel(interpreter, spec), True
        return self._model(fmt.BOTTLENECK, threads=self.threads), False

    def initial_parameters(self) -> tuple[np.ndarray, ...]:
        """The parameters ``initialize`` gives (read-only arrays)."""
        self.initialize.write(fmt.ZERO, np.float32(0.0))
        self.initialize.invoke()
        count = len(self._bundle.manifest.parameters)
        return tuple(frozen(self.initialize.read(fmt.param(i))) for i in range(count))

    def bottleneck(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """The base model's output for one preprocessed input ``x`` (a copy, of ``shape``)."""
        return self.bottleneck_of(lambda view: self.base.write(fmt.IMAGE, x), shape)

    def bottleneck_of(
        self, prepare: Callable[[np.ndarray], None], shape: Sequence[int]
    ) -> np.ndarray:
        """The base model's output (a copy, of ``shape``) for the input ``prepare(view)``
        writes into the input tensor's view."""
        with self.base_lock:
            self.base.fill(fmt.IMAGE, prepare)
            self.base.invoke()
            return self.base.read(fmt.BOTTLENECK).reshape(tuple(shape))


def frozen(array: Any) -> np.ndarray:
    """Mark an array read-only: parameter sets are shared between threads and never edited."""
    array.flags.writeable = False
    return array
