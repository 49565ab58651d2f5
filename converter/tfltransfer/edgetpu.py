"""Compiles the bottleneck model for the Coral Edge TPU with Google's ``edgetpu_compiler``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from personalizer.bundle_format import BOTTLENECK, EDGETPU_BOTTLENECK, model_file
from tfltransfer.errors import QuantizationError

INSTALL_HINT = (
    "install the Edge TPU compiler (Debian/Ubuntu x86_64: package edgetpu-compiler from Coral's "
    "apt repository, see coral.ai/docs/edgetpu/compiler) so that edgetpu_compiler is on PATH"
)


def compiler_path() -> str:
    """Path of ``edgetpu_compiler``, or a clear error when it is not installed."""
    path = shutil.which("edgetpu_compiler")
    if path is None:
        raise QuantizationError(
            f"--edgetpu needs edgetpu_compiler, which is not on PATH: {INSTALL_HINT}"
        )
    return path


def compile_for_edgetpu(model: bytes) -> bytes:
    """Return the Edge TPU version of a fully int8-quantized model."""
    compiler = compiler_path()
    with tempfile.TemporaryDirectory(prefix="tfltransfer-edgetpu-") as tmp:
        # The compiler names its output <input stem>_edgetpu.tflite: the bundle's file name.
        source = Path(tmp) / model_file(BOTTLENECK)
        source.write_bytes(model)
        done = subprocess.run(
            [compiler, "-s", "-o", tmp, str(source)], capture_output=True, text=True, check=False
        )
        compiled = Path(tmp) / EDGETPU_BOTTLENECK
        if done.returncode != 0 or not compiled.is_file():
            raise QuantizationError(f"edgetpu_compiler failed:\n{done.stdout}\n{done.stderr}")
        return compiled.read_bytes()
