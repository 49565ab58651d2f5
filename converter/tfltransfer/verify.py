"""The converter's self-check: the written bundle must reproduce TensorFlow's numbers.

It runs initialize, one train step, one optimizer step and inference in the LiteRT interpreter (in
a subprocess, as on the board), compares them with the same functions run by TensorFlow, and
compares the hand-written gradients with TensorFlow's automatic ones.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfltransfer.errors import VerificationError
from tfltransfer.heads import layers as hl
from tfltransfer.heads.program import HeadProgram, LayerChainProgram, autodiff_loss_and_grads


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


def autodiff_grads(program: HeadProgram, bottlenecks, labels, params) -> list[np.ndarray]:
    """TensorFlow's own gradients of the program's loss."""
    tensors = [tf.constant(p) for p in params]
    _, grads = autodiff_loss_and_grads(
        program.loss, tf.constant(bottlenecks), tf.constant(labels), tensors
    )
    return [g.numpy() for g in grads]


def verify_bundle(bundle: Path, converter: object, program: HeadProgram, models: dict) -> str:
    """Check the bundle in ``bundle``; return a printable table or raise VerificationError."""
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    bottleneck_shape = tuple(manifest["bottleneck"]["shape"])
    functions = converter.build_functions(program, bottleneck_shape)
    bottlenecks, labels, params = sample_inputs(converter, program, bottleneck_shape)
    state = [np.full(s["shape"], s["init"], np.float32) for s in manifest["optimizer"]["state"]]
    image = np.random.default_rng(1).uniform(size=manifest["input"]["shape"]).astype(np.float32)
    train_grads = [np.asarray(g) for g in autodiff_grads(program, bottlenecks, labels, params)]
    feeds = {
        "initialize": {"zero": np.float32(0.0)},
        "bottleneck": {"image": image},
        "train_head": {"bottlenecks": bottlenecks, "labels": labels}
        | {f"param_{i}": p for i, p in enumerate(params)},
        "inference": {"bottleneck": bottlenecks[:1]}
        | {f"param_{i}": p for i, p in enumerate(params)},
        "optimizer": {f"param_{i}": p for i, p in enumerate(params)}
        | {f"grad_{i}": g for i, g in enumerate(train_grads)}
        | {f"state_{j}": s for j, s in enumerate(state)},
    }
    runnable = [name for name in feeds if not manifest["models"][name]["requires_flex"]]
    feeds = {name: feeds[name] for name in runnable}
    with tempfile.TemporaryDirectory(prefix="tfltransfer-verify-") as tmp:
        inputs_path, outputs_path = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inputs_path, **{f"{m}/{k}": v for m, f in feeds.items() for k, v in f.items()})
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
        lite = dict(np.load(outputs_path))

    problems = []

    def check(label: str, actual: np.ndarray, expected: np.ndarray) -> None:
        if not close(actual, expected):
            diff = (
                float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else -1
            )
            problems.append(f"{label}: LiteRT and TensorFlow differ (max abs diff {diff:g})")

    reference = {}
    for name in [n for n in ("initialize", "inference", "optimizer") if n in runnable]:
        function, input_names, _ = functions[name]
        outputs = function(*[feeds[name][k] for k in input_names])
        reference[name] = {k: v.numpy() for k, v in outputs.items()}
    for name in ("initialize", "inference", "optimizer"):
        for key, value in reference[name].items():
            check(f"{name}/{key}", lite[f"{name}/{key}"], value)
    for key in lite:
        if not np.all(np.isfinite(lite[key])):
            problems.append(f"{key}: not finite")
    deterministic = is_deterministic(program)
    if deterministic and "train_head" in runnable:
        loss = program.loss(
            tf.constant(bottlenecks), tf.constant(labels), [tf.constant(p) for p in params]
        )
        check("train_head/loss", lite["train_head/loss"], loss.numpy())
        for i, grad in enumerate(train_grads):
            check(f"train_head/grad_{i} vs autodiff", lite[f"train_head/grad_{i}"], grad)
    if problems:
        raise VerificationError("self-check failed:\n  " + "\n  ".join(problems))
    lines = [f"{'model':<12} {'size':>10} {'ops':>4} {'flex':>5} {'invoke ms':>10}"]
    for name in ("bottleneck", "initialize", "train_head", "inference", "optimizer"):
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
    lines.append(f"self-check passed ({ops}; {note})")
    return "\n".join(lines)
