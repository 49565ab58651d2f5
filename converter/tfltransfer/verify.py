"""The converter's self-check: the written bundle must reproduce TensorFlow's numbers.

It runs initialize, one train step, one optimizer step and inference in the LiteRT interpreter (in
a subprocess, as on the board), compares them with the same functions run by TensorFlow, and
compares the hand-written gradients with TensorFlow's automatic ones. Every model is run twice:
by signature name (as this project's runtime reads bundles) and by position, as the seed's
consumers do (``get_input_details()`` order, bottleneck and inference resized to a batch of two,
train_head fed a full padded batch at its default size); a wrong positional order fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from personalizer import bundle_format as fmt
from tfltransfer import tflite_model_info
from tfltransfer.errors import VerificationError
from tfltransfer.heads import layers as hl
from tfltransfer.heads.program import HeadProgram, LayerChainProgram, autodiff_loss_and_grads

CHECKED = ("initialize", "bottleneck", "train_head", "inference", "optimizer")


def close(actual: np.ndarray, expected: np.ndarray, rtol: float = 2e-3) -> bool:
    """float32 agreement relative to the size of the values compared."""
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return actual.shape == expected.shape and bool(
        np.allclose(actual, expected, rtol=rtol, atol=1e-5 * scale)
    )


def is_deterministic(program: HeadProgram) -> bool:
    """False when training draws random numbers (dropout), so single runs cannot be compared."""
    if isinstance(program, LayerChainProgram):
        return not any(isinstance(layer, hl.Dropout) and layer.rate > 0 for layer in program.layers)
    return True


def sample_inputs(converter: object, program: HeadProgram, bottleneck_shape: tuple, seed: int = 0):
    """Random bottlenecks, one-hot labels and perturbed parameters for a check."""
    rng = np.random.default_rng(seed)
    batch = min(3, converter.train_batch_size)
    bottlenecks = rng.uniform(0, 2, size=(batch, *bottleneck_shape)).astype(np.float32)
    labels = np.eye(converter.num_classes, dtype=np.float32)[
        rng.integers(0, converter.num_classes, size=batch)
    ]
    params = [
        (p.initial + rng.normal(0, 0.05, size=p.shape)).astype(np.float32)
        for p in program.parameters
    ]
    return bottlenecks, labels, params


def sample_base_inputs(manifest: dict, batch: int, seed: int = 1) -> np.ndarray:
    """``batch`` random inputs of the bundle's input contract (within its range, if any)."""
    low, high = manifest["input"]["range"] or (0.0, 1.0)
    shape = (batch, *manifest["input"]["shape"][1:])
    values = np.random.default_rng(seed).uniform(size=shape)
    return (low + values * (high - low)).astype(np.float32)


def pad_batch(rows: np.ndarray, batch: int) -> np.ndarray:
    """``rows`` repeated until there are ``batch`` of them (the seed's padding of a short batch)."""
    return np.resize(rows, (batch, *rows.shape[1:])).astype(rows.dtype)


def autodiff_grads(program: HeadProgram, bottlenecks, labels, params) -> list[np.ndarray]:
    """TensorFlow's own gradients of the program's loss."""
    tensors = [tf.constant(p) for p in params]
    _, grads = autodiff_loss_and_grads(
        program.loss, tf.constant(bottlenecks), tf.constant(labels), tensors
    )
    return [g.numpy() for g in grads]


def _run_worker(bundle: Path, named: dict, positional: dict) -> dict[str, np.ndarray]:
    arrays = {f"named/{m}/{k}": v for m, f in named.items() for k, v in f.items()}
    arrays.update(
        {
            f"positional/{m}/{k}": np.asarray(v)
            for m, vs in positional.items()
            for k, v in enumerate(vs)
        }
    )
    with tempfile.TemporaryDirectory(prefix="tfltransfer-verify-") as tmp:
        inputs_path, outputs_path = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inputs_path, **arrays)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tfltransfer.verify_worker",
                str(bundle),
                str(inputs_path),
                str(outputs_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise VerificationError(
                f"the bundle does not run in the LiteRT interpreter:\n{done.stderr[-2000:]}"
            )
        return dict(np.load(outputs_path))


def verify_bundle(bundle: Path, converter: object, program: HeadProgram, models: dict) -> str:
    """Check the bundle in ``bundle``; return a printable table or raise VerificationError."""
    manifest = json.loads((bundle / fmt.MANIFEST).read_text())
    bottleneck_shape = tuple(manifest["bottleneck"]["shape"])
    functions = converter.build_functions(program, bottleneck_shape)
    bottlenecks, labels, params = sample_inputs(converter, program, bottleneck_shape)
    probe = np.random.default_rng(2).uniform(0, 2, size=(2, *bottleneck_shape)).astype(np.float32)
    state = [np.full(s["shape"], s["init"], np.float32) for s in manifest["optimizer"]["state"]]
    base_inputs = sample_base_inputs(manifest, 2)
    train_grads = [np.asarray(g) for g in autodiff_grads(program, bottlenecks, labels, params)]
    batch = converter.train_batch_size
    padded = (pad_batch(bottlenecks, batch), pad_batch(labels, batch))
    # The same values by name and, in the format's order, by position.
    values = {
        "initialize": [np.float32(0.0)],
        "bottleneck": [base_inputs[:1]],
        "train_head": [bottlenecks, labels, *params],
        "inference": [probe[:1], *params],
        "optimizer": [*params, *train_grads, *state],
    }
    # A base exported with a fixed batch of 1 keeps it (the converter warned).
    batch_base = tflite_model_info.has_dynamic_batch(models[fmt.BOTTLENECK].content)
    positional = dict(
        values,
        bottleneck=[base_inputs if batch_base else base_inputs[:1]],
        inference=[probe, *params],
    )
    positional["train_head"] = [*padded, *params]
    orders = {name: (functions[name][1], functions[name][2]) for name in functions}
    orders["bottleneck"] = ((fmt.IMAGE,), (fmt.BOTTLENECK,))
    named = {name: dict(zip(orders[name][0], vs, strict=True)) for name, vs in values.items()}
    runnable = [name for name in CHECKED if not manifest["models"][name]["requires_flex"]]
    lite = _run_worker(
        bundle,
        {name: named[name] for name in runnable},
        {name: positional[name] for name in runnable},
    )

    problems = [str(p) for p in lite.pop("__problems__")]

    def check(label: str, actual: np.ndarray, expected: np.ndarray) -> None:
        if not close(actual, expected):
            diff = (
                float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else -1
            )
            problems.append(f"{label}: LiteRT and TensorFlow differ (max abs diff {diff:g})")

    deterministic = is_deterministic(program)
    for name in [
        n for n in ("initialize", "inference", "optimizer", "train_head") if n in runnable
    ]:
        function, input_names, output_names = functions[name]
        if name == "train_head" and not deterministic:
            continue
        by_name = {k: v.numpy() for k, v in function(*values[name]).items()}
        by_position = {k: v.numpy() for k, v in function(*positional[name]).items()}
        for key in output_names:
            if name != "train_head":  # train_head by name is checked against autodiff below
                check(f"{name}/{key}", lite[f"named/{name}/{key}"], by_name[key])
        for k, key in enumerate(output_names):
            got = lite.get(f"positional/{name}/{k}")
            if got is not None:
                check(f"{name} output {k} ({key}) read by position", got, by_position[key])
    if batch_base and "positional/bottleneck/0" in lite:
        # Batches give the same rows as single inputs.
        check(
            "bottleneck of a batch of 2, row 0, vs alone",
            lite["positional/bottleneck/0"][:1],
            lite[f"named/bottleneck/{fmt.BOTTLENECK}"],
        )
    for key, value in lite.items():
        if not key.endswith("__seconds__") and not np.all(np.isfinite(value)):
            problems.append(f"{key}: not finite")
    if deterministic and "train_head" in runnable:
        loss = program.loss(
            tf.constant(bottlenecks), tf.constant(labels), [tf.constant(p) for p in params]
        )
        check("train_head/loss", lite[f"named/train_head/{fmt.LOSS}"], loss.numpy())
        for i, grad in enumerate(train_grads):
            check(
                f"train_head/{fmt.grad(i)} vs autodiff",
                lite[f"named/train_head/{fmt.grad(i)}"],
                grad,
            )
    if problems:
        raise VerificationError("self-check failed:\n  " + "\n  ".join(problems))
    lines = [f"{'model':<12} {'size':>10} {'ops':>4} {'flex':>5} {'invoke ms':>10}"]
    for name in CHECKED:
        entry = manifest["models"][name]
        size = manifest["files"][entry["file"]]["size"]
        key = f"{name}/__seconds__"
        ms = f"{float(lite[key]) * 1000:.2f}" if key in lite else "not run"
        flex = str(entry["requires_flex"])
        lines.append(f"{name:<12} {size:>10,} {len(entry['ops']):>4} {flex:>5} {ms:>10}")
    if "train_head" not in runnable:
        note = "models needing Flex were not run: no interpreter here has the Flex delegate"
    elif deterministic:
        note = "gradients match TensorFlow autodiff"
    else:
        note = "training uses dropout: gradients checked for finiteness only"
    ops = "needs Flex" if manifest["requires_flex"] else "builtin ops only"
    lines.append(f"self-check passed ({ops}; {note}; the seed's positional order holds)")
    return "\n".join(lines)
