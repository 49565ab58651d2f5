"""Fixtures of the runtime tests: real bundles from the converter, models on the runtime under test.

The suite runs twice: in the board environment (tflite-runtime 2.14, the default ``auto``
choice) and with ``PERSONALIZER_TEST_RUNTIME=ai_edge_litert`` in the litert environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from personalizer import TransferLearningModel
from tests.support.bundles import BundleSpec, build_bundle

RUNTIME = os.environ.get("PERSONALIZER_TEST_RUNTIME", "auto")


@pytest.fixture(scope="session")
def runtime() -> str:
    """The interpreter package the suite runs on (``auto`` picks tflite_runtime on the board)."""
    return RUNTIME


@pytest.fixture(scope="session")
def sgd_bundle() -> Path:
    """As ``bundle`` but trained with SGD (learning rate 0.01)."""
    return build_bundle(BundleSpec(optimizer="sgd"))


@pytest.fixture(scope="session")
def mlp_bundle() -> Path:
    """The seed's MLP head (Dense 32 relu + Dense softmax, L2) from a .keras file, Adam."""
    return build_bundle(BundleSpec(head="mlp"))


ModelFactory = Callable[..., TransferLearningModel]


@pytest.fixture(scope="session")
def make_model(runtime: str) -> ModelFactory:
    """Build a TransferLearningModel on the runtime under test (seeded shuffling)."""

    def make(bundle: Path, classes: Any = None, **kwargs: Any) -> TransferLearningModel:
        kwargs.setdefault("runtime", runtime)
        kwargs.setdefault("seed", 0)
        return TransferLearningModel(bundle, classes, **kwargs)

    return make


@pytest.fixture
def model(make_model: ModelFactory, bundle: Path) -> TransferLearningModel:
    """A fresh model on the default test bundle."""
    return make_model(bundle)
