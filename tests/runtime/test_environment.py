"""The runtime runs without TensorFlow, on the interpreter package the environment provides."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest

import personalizer


def test_tensorflow_is_not_installed_in_the_board_environment() -> None:
    with pytest.raises(ImportError):
        importlib.import_module("tensorflow")


def test_running_a_model_imports_no_tensorflow(bundle, runtime) -> None:
    # A fresh interpreter, so no other test's imports count.
    code = (
        "import sys, numpy as np\n"
        "from personalizer import TransferLearningModel\n"
        f"m = TransferLearningModel({str(bundle)!r}, runtime={runtime!r})\n"
        "m.add_sample(np.zeros((50, 60, 3), np.uint8), 'A')\n"
        "m.train(1)\n"
        "m.predict(np.zeros((50, 60, 3), np.uint8))\n"
        "print(m.runtime_name, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, has_tf = out.stdout.split()
    assert has_tf == "False"
    installed = [n for n in ("tflite_runtime", "ai_edge_litert") if importlib.util.find_spec(n)]
    expected = installed[0] if runtime == "auto" else runtime
    assert name == expected


def test_auto_prefers_tflite_runtime_when_installed(model) -> None:
    try:
        importlib.import_module("tflite_runtime.interpreter")
    except ImportError:
        assert model.runtime_name in ("ai_edge_litert", "tensorflow")
    else:
        assert model.runtime_name in ("tflite_runtime", "ai_edge_litert")


def test_package_exports_the_api() -> None:
    assert personalizer.__version__ == "1.0.0"
    for name in (
        "TransferLearningModel",
        "Prediction",
        "PersonalizerError",
        "BundleError",
        "BundleHashMismatch",
        "UnsupportedBundleVersion",
        "FlexRequiredError",
        "RuntimeNotAvailable",
        "UnknownClassError",
        "ImageFormatError",
        "StateFileError",
        "StateBundleMismatch",
        "NoSamplesError",
    ):
        assert hasattr(personalizer, name), name
    for name in personalizer.__all__:
        obj = getattr(personalizer, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, personalizer.PersonalizerError), name
