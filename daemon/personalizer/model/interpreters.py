"""Choose the TFLite interpreter package and build interpreters (with the Edge TPU delegate).

Three packages can run a bundle: ``tflite_runtime`` (what Raspberry Pi OS users install),
``ai_edge_litert`` (its successor) and ``tensorflow.lite`` (workstations; the only one that
carries Flex). ``auto`` takes the first one installed, in that order. Imports are lazy: importing
this module never imports any of them, and ``tflite_runtime`` must be imported before TensorFlow
ever is in a process, which only happens when ``tensorflow`` is asked for or is the last resort.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import FlexRequiredError, RuntimeNotAvailable

log = logging.getLogger(__name__)

RUNTIMES = ("tflite_runtime", "ai_edge_litert", "tensorflow")
EDGETPU_LIBRARY = "libedgetpu.so.1"
DELEGATES = (None, "edgetpu")

# The pip package that provides each runtime, for error messages.
_PACKAGES = {
    "tflite_runtime": "tflite-runtime",
    "ai_edge_litert": "ai-edge-litert",
    "tensorflow": "tensorflow",
}


@dataclass(frozen=True)
class InterpreterRuntime:
    """One installed interpreter package: its ``Interpreter`` class and ``load_delegate``."""

    name: str
    version: str
    interpreter_class: Callable[..., Any]
    load_delegate: Callable[..., Any]
    has_flex: bool

    def new_interpreter(
        self, model: bytes, num_threads: int | None, delegates: list[Any] | None = None
    ) -> Any:
        """Build an interpreter for the flatbuffer ``model`` (tensors not yet allocated)."""
        kwargs: dict[str, Any] = {"model_content": model}
        if num_threads is not None:
            kwargs["num_threads"] = num_threads
        if delegates:
            kwargs["experimental_delegates"] = delegates
        return self.interpreter_class(**kwargs)


def _import(name: str) -> InterpreterRuntime:
    """Import one runtime; ImportError when it is not installed."""
    if name == "tflite_runtime":
        module = importlib.import_module("tflite_runtime.interpreter")
        version = getattr(importlib.import_module("tflite_runtime"), "__version__", "?")
        return InterpreterRuntime(name, version, module.Interpreter, module.load_delegate, False)
    if name == "ai_edge_litert":
        module = importlib.import_module("ai_edge_litert.interpreter")
        version = _dist_version("ai-edge-litert")
        return InterpreterRuntime(name, version, module.Interpreter, module.load_delegate, False)
    if name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return InterpreterRuntime(
            name, tf.__version__, tf.lite.Interpreter, tf.lite.experimental.load_delegate, True
        )
    raise ValueError(name)


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def select_runtime(name: str = "auto", requires_flex: bool = False) -> InterpreterRuntime:
    """Return the interpreter package ``name`` (or the first installed one for ``auto``).

    With ``requires_flex`` (a bundle with select TensorFlow ops), only ``tensorflow`` can run it:
    ``auto`` then means ``tensorflow``, and any other choice is a :class:`FlexRequiredError`.

    Raises:
        RuntimeNotAvailable: the named runtime is not installed, or none is (for ``auto``).
        FlexRequiredError: Flex is needed and the chosen runtime does not carry it.
        ValueError: ``name`` is not ``auto`` or one of :data:`RUNTIMES`.
    """
    if name != "auto" and name not in RUNTIMES:
        raise ValueError(f"runtime {name!r} is not one of auto, {', '.join(RUNTIMES)}")
    if requires_flex and name not in ("auto", "tensorflow"):
        raise FlexRequiredError(
            f"the bundle needs select TensorFlow ops (Flex) but runtime {name!r} has none; "
            "convert the head with builtin layers only (Dense, Flatten, Dropout, "
            "GlobalAveragePooling2D, BatchNormalization) or run with runtime='tensorflow'"
        )
    candidates = ("tensorflow",) if requires_flex else (RUNTIMES if name == "auto" else (name,))
    for candidate in candidates:
        try:
            runtime = _import(candidate)
        except ImportError as err:
            log.debug("runtime %s not available: %s", candidate, err)
            continue
        log.info("using TFLite runtime %s %s", runtime.name, runtime.version)
        return runtime
    if requires_flex:
        raise FlexRequiredError(
            "the bundle needs select TensorFlow ops (Flex), which only the full tensorflow "
            "package carries, and it is not installed; convert the head with builtin layers "
            "only, or install tensorflow"
        )
    if name == "auto":
        raise RuntimeNotAvailable(
            "no TFLite interpreter is installed; install one of: pip install tflite-runtime "
            "(Raspberry Pi OS, Python <= 3.11), pip install ai-edge-litert, or pip install "
            "tensorflow"
        )
    raise RuntimeNotAvailable(
        f"runtime {name!r} was asked for but is not installed; pip install {_PACKAGES[name]}, "
        "or use runtime='auto' to take whichever is installed"
    )


def load_edgetpu_delegate(runtime: InterpreterRuntime, device: str | None = None) -> Any | None:
    """Load the Edge TPU delegate, or log why not and return None (the caller uses the CPU).

    ``device`` picks one accelerator as libedgetpu names them: ``"usb"``, ``"pci"``, ``":0"``
    (the first found), ``"usb:1"``; None takes the first.
    """
    try:
        # Look for the library first: a failed load_delegate leaves a half-built Delegate whose
        # __del__ prints an AttributeError traceback (tflite-runtime 2.14).
        ctypes.CDLL(EDGETPU_LIBRARY)
        return runtime.load_delegate(EDGETPU_LIBRARY, {"device": device} if device else None)
    except (ValueError, OSError, RuntimeError) as err:
        log.warning(
            "Edge TPU delegate %s could not be loaded (%s); running the base model on the CPU. "
            "Install the Edge TPU runtime (apt install libedgetpu1-std) and plug in the "
            "accelerator%s to use it",
            EDGETPU_LIBRARY,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
            f" ({device})" if device else "",
        )
        return None


def default_num_threads() -> int:
    """Threads of the base model's interpreter when nobody says: one less than the cores, 1 to 4.

    The base model's thread pool splits each invoke evenly over its threads, so one thread that
    the camera, MQTT or the trainer keeps off its core stalls the whole invoke (on a 2-core
    board, 2 threads measured several times slower than 1 once the daemon's other threads were
    busy). Leaving a core to them keeps the frame rate steady. The runtimes disagree on their
    own default (ai-edge-litert uses 1), so it is always set.
    """
    return max(1, min(4, (os.cpu_count() or 1) - 1))
