"""Choosing the interpreter package and the Edge TPU delegate."""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest

from personalizer import FlexRequiredError, RuntimeNotAvailable
from personalizer.model.interpreters import RUNTIMES, select_runtime


def _missing_runtime() -> str:
    for name in RUNTIMES:
        module = "tensorflow" if name == "tensorflow" else f"{name}.interpreter"
        try:
            importlib.import_module(module)
        except ImportError:
            return name
    pytest.fail("every runtime is installed; the board environments must lack tensorflow")


def test_naming_a_runtime_that_is_not_installed_says_what_to_install() -> None:
    name = _missing_runtime()
    with pytest.raises(RuntimeNotAvailable) as err:
        select_runtime(name)
    package = {
        "tflite_runtime": "tflite-runtime",
        "ai_edge_litert": "ai-edge-litert",
        "tensorflow": "tensorflow",
    }[name]
    assert f"pip install {package}" in str(err.value)
    assert repr(name) in str(err.value)


def test_unknown_runtime_name_is_refused() -> None:
    with pytest.raises(ValueError, match="tflite_runtime"):
        select_runtime("tensorflow_lite_micro")


def test_flex_bundle_is_refused_by_runtimes_without_flex(runtime) -> None:
    name = "ai_edge_litert" if runtime == "auto" else runtime
    with pytest.raises(FlexRequiredError, match="select TensorFlow ops"):
        select_runtime(name, requires_flex=True)
    # auto can only mean tensorflow for such a bundle, and tensorflow is not installed here.
    with pytest.raises(FlexRequiredError, match="install tensorflow"):
        select_runtime("auto", requires_flex=True)


def test_edgetpu_without_the_library_falls_back_to_the_cpu_with_a_warning(
    make_model, bundle, caplog
) -> None:
    with caplog.at_level(logging.WARNING):
        tpu = make_model(bundle, delegate="edgetpu")
    assert not tpu.delegate_active
    assert "libedgetpu.so.1" in caplog.text and "CPU" in caplog.text
    cpu = make_model(bundle)
    frame = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    np.testing.assert_allclose(tpu.bottleneck(frame), cpu.bottleneck(frame), rtol=1e-6)


def test_a_named_edgetpu_device_that_is_missing_falls_back_naming_it(
    make_model, bundle, caplog
) -> None:
    with caplog.at_level(logging.WARNING):
        tpu = make_model(bundle, delegate="edgetpu", edgetpu_device="usb:1")
    assert not tpu.delegate_active
    assert "(usb:1)" in caplog.text and "running the base model on the CPU" in caplog.text


def test_unknown_delegate_is_refused(make_model, bundle) -> None:
    with pytest.raises(ValueError, match="edgetpu"):
        make_model(bundle, delegate="gpu")


def test_bad_thread_count_is_refused(make_model, bundle) -> None:
    with pytest.raises(ValueError, match="num_threads"):
        make_model(bundle, num_threads=0)
