"""What the board lane runs in each Debian arm64 root, and what each root must end up with.

Python under qemu-user is 20-50x slower than on the host, so the runtime suite is not run whole:
:data:`RUNTIME_TESTS` picks the tests that exercise what differs on a board (the installed
interpreter package and numpy, bundle and state-file parsing, training, imprinting and threads on
aarch64) and leaves out the slow repetitions of the same paths. ``tests/runtime/test_learning.py``
cannot run in a root at all: it compares with Keras through the converter's TensorFlow
environment on the host.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    """One Debian release the lane installs on, and what scripts/install.sh must give it."""

    name: str
    debian: str
    python: str  # the suite's python3, major.minor
    runtime_dist: str  # the interpreter package install.sh must choose
    runtime_module: str
    runtime_version_prefix: str
    absent_dist: str  # the interpreter package that must not be installed
    numpy_below_2: bool
    # The arm64 Docker image (python:3.11-slim-bookworm) is checked in the root of its release.
    image_requirements: bool

    def test_files(self) -> list[str]:
        """The host-side test modules of tests/arm64 that run against this root."""
        files = ["tests/arm64/test_installed_board.py", "tests/arm64/test_daemon_on_arm64.py"]
        if self.image_requirements:
            files.append("tests/arm64/test_image_requirements.py")
        return files


SUITES = {
    "bookworm": Suite(
        name="bookworm",
        debian="12",
        python="3.11",
        runtime_dist="tflite-runtime",
        runtime_module="tflite_runtime",
        runtime_version_prefix="2.14.",
        absent_dist="ai-edge-litert",
        numpy_below_2=True,
        image_requirements=True,
    ),
    # Raspberry Pi OS's current release: tflite-runtime has no wheel for Python 3.13.
    "trixie": Suite(
        name="trixie",
        debian="13",
        python="3.13",
        runtime_dist="ai-edge-litert",
        runtime_module="ai_edge_litert",
        runtime_version_prefix="2.",
        absent_dist="tflite-runtime",
        numpy_below_2=False,
        image_requirements=False,
    ),
}

# Run inside each root with the installed venv's interpreter (pytest added beside it).
RUNTIME_TESTS = [
    # No TensorFlow; "auto" picks the package install.sh installed; Edge TPU fallback; Flex refusal.
    "tests/runtime/test_environment.py",
    "tests/runtime/test_interpreters.py",
    # Manifest, hash and shape checks, zip bundles; the public API; preprocessing; signatures.
    "tests/runtime/test_bundle.py",
    "tests/runtime/test_api.py",
    "tests/runtime/test_preprocess.py",
    "tests/runtime/test_signature.py",
    # The state database (the root's own SQLite) written and read back on aarch64; damage caught.
    "tests/runtime/test_state_file.py::test_everything_comes_back",
    "tests/runtime/test_state_file.py::test_save_load_save_gives_the_same_state",
    "tests/runtime/test_state_file.py::test_a_damaged_page_is_caught_by_sqlites_check",
    # Training learns (softmax and the two-layer head), imprinting classifies, threads are safe.
    "tests/runtime/test_training.py::test_loss_goes_down_on_learnable_images",
    "tests/runtime/test_training.py::test_mlp_head_with_four_parameter_tensors_trains",
    "tests/runtime/test_imprinting.py::test_imprinted_model_classifies_held_out_frames_without_training",
    "tests/runtime/test_concurrency.py::test_samples_saves_and_predictions_while_training_do_not_deadlock",
]
