"""Runs each model of a bundle in the LiteRT interpreter and saves the outputs.

Started by :mod:`tfltransfer.verify` in a separate process that never imports TensorFlow, as the
board would run it. Models that need Flex ops are not given to it: no Python interpreter here
carries the Flex delegate.

Each model is run twice:

- by name, through its ``serving_default`` signature (as this project's runtime does);
- by position, as the seed's consumer does: ``get_input_details()`` / ``get_output_details()``
  in order, ``set_tensor`` / ``get_tensor`` by index. Like that consumer, only ``bottleneck`` and
  ``inference`` are resized (to the batch given); every other model must take the arrays at its
  default shapes (train_head: full, padded batches). Before running, the position of every
  tensor is checked against the format's order
  (:func:`personalizer.bundle_format.signature_order`).

Usage: ``python -m tfltransfer.verify_worker BUNDLE_DIR INPUTS.npz OUTPUTS.npz``. ``INPUTS.npz``
holds ``named/<model>/<input name>`` and ``positional/<model>/<k>`` arrays; ``OUTPUTS.npz`` gets
``named/<model>/<output name>``, ``positional/<model>/<k>``, ``<model>/__seconds__`` (median
invoke time over a few named runs) and ``__problems__`` (positional-order faults, as text).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from personalizer.bundle_format import MANIFEST, SignatureOrder, model_file, signature_order

#: The models the seed's consumer resizes to its batch; it feeds the others as allocated.
RESIZED = ("bottleneck", "inference")


def _models_in(feeds: dict[str, np.ndarray], prefix: str) -> list[str]:
    return sorted({key.split("/")[1] for key in feeds if key.startswith(prefix + "/")})


def run_named(interpreter_class: Any, bundle: Path, name: str, args: dict) -> dict:
    """Run one model through its signature; ``{output name: array, "__seconds__": t}``."""
    runner = interpreter_class(model_path=str(bundle / model_file(name))).get_signature_runner()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        out = runner(**args)
        times.append(time.perf_counter() - started)
    result = {key: np.array(value) for key, value in out.items()}
    result["__seconds__"] = np.array(statistics.median(times))
    return result


def check_positions(interpreter: Any, name: str, order: SignatureOrder) -> list[str]:
    """Faults of the model's positional order against the format's, as sentences."""
    runner = interpreter.get_signature_runner()
    problems = []
    for kind, details, signature, names in (
        ("input", interpreter.get_input_details(), runner.get_input_details(), order.inputs),
        ("output", interpreter.get_output_details(), runner.get_output_details(), order.outputs),
    ):
        by_index = {int(d["index"]): n for n, d in signature.items()}
        got = [by_index.get(int(d["index"]), "?") for d in details]
        if got != list(names):
            problems.append(f"{name}: positional {kind}s are {got}, the format's are {list(names)}")
    del runner
    return problems


def default_shape_problems(interpreter: Any, name: str, values: list[np.ndarray]) -> list[str]:
    """Inputs whose default shape is not the array's (a consumer that does not resize fails)."""
    return [
        f"{name}: input {k} is allocated as {list(map(int, d['shape']))} but a positional "
        f"consumer feeds {list(v.shape)} without resizing"
        for k, (d, v) in enumerate(zip(interpreter.get_input_details(), values, strict=True))
        if tuple(v.shape) != tuple(d["shape"])
    ]


def run_positional(interpreter: Any, values: list[np.ndarray]) -> list[np.ndarray]:
    """Feed ``values`` by position (resizing a batch that differs), invoke, read by position."""
    details = interpreter.get_input_details()
    if len(values) != len(details):
        raise ValueError(f"{len(values)} inputs for a model with {len(details)}")
    for detail, value in zip(details, values, strict=True):
        if tuple(value.shape) != tuple(detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], list(value.shape), strict=True)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), values, strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]


def run(bundle: Path, inputs_path: Path, outputs_path: Path) -> None:
    """Invoke every model named in the inputs file, by name and by position; save the outputs."""
    from ai_edge_litert.interpreter import Interpreter

    manifest = json.loads((bundle / MANIFEST).read_text())
    n_params, n_state = len(manifest["parameters"]), len(manifest["optimizer"]["state"])
    feeds = dict(np.load(inputs_path))
    results: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for name in _models_in(feeds, "named"):
        prefix = f"named/{name}/"
        args = {k[len(prefix) :]: v for k, v in feeds.items() if k.startswith(prefix)}
        for key, value in run_named(Interpreter, bundle, name, args).items():
            target = f"{name}/__seconds__" if key == "__seconds__" else prefix + key
            results[target] = value
    for name in _models_in(feeds, "positional"):
        interpreter = Interpreter(model_path=str(bundle / model_file(name)))
        prefix = f"positional/{name}/"
        found = check_positions(interpreter, name, signature_order(name, n_params, n_state))
        if found:
            problems += found
            continue
        values = [feeds[f"{prefix}{k}"] for k in range(len(interpreter.get_input_details()))]
        if name not in RESIZED:
            found = default_shape_problems(interpreter, name, values)
            if found:
                problems += found
                continue
        for k, value in enumerate(run_positional(interpreter, values)):
            results[f"{prefix}{k}"] = value
    results["__problems__"] = np.array(problems, dtype=str)
    np.savez(outputs_path, **results)


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
