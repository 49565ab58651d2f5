"""Runs each model of a bundle in the LiteRT interpreter and saves the outputs.

Started by :mod:`tfltransfer.verify` in a separate process that never imports TensorFlow, as the
board would run it. Models that need Flex ops are not given to it: no Python interpreter here
carries the Flex delegate.

Usage: ``python -m tfltransfer.verify_worker BUNDLE_DIR INPUTS.npz OUTPUTS.npz``. ``INPUTS.npz``
holds ``<model>/<input name>`` arrays; ``OUTPUTS.npz`` gets ``<model>/<output name>`` arrays and
``<model>/__seconds__`` (median invoke time over a few runs).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np


def run(bundle: Path, inputs_path: Path, outputs_path: Path) -> None:
    """Invoke every model named in the inputs file and save its outputs."""
    from ai_edge_litert.interpreter import Interpreter

    feeds = dict(np.load(inputs_path))
    models = sorted({key.split("/")[0] for key in feeds})
    results: dict[str, np.ndarray] = {}
    for name in models:
        interpreter = Interpreter(model_path=str(bundle / f"{name}.tflite"))
        runner = interpreter.get_signature_runner()
        args = {k.split("/", 1)[1]: v for k, v in feeds.items() if k.startswith(f"{name}/")}
        times = []
        for _ in range(3):
            started = time.perf_counter()
            out = runner(**args)
            times.append(time.perf_counter() - started)
        for key, value in out.items():
            results[f"{name}/{key}"] = np.array(value)
        results[f"{name}/__seconds__"] = np.array(statistics.median(times))
    np.savez(outputs_path, **results)


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
