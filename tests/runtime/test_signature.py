"""The zero-copy signature wrapper: names to tensors, checked writes, one allocation per batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from personalizer import TensorShapeError
from personalizer.model.bundle import load_bundle
from personalizer.model.interpreters import select_runtime
from personalizer.model.signature import SignatureModel


class CountingInterpreter:
    """Forwards to a real interpreter and counts the calls that reallocate tensors."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.allocations = 0
        self.resizes = 0

    def allocate_tensors(self) -> None:
        self.allocations += 1
        self._real.allocate_tensors()

    def resize_tensor_input(self, *args: Any, **kwargs: Any) -> None:
        self.resizes += 1
        self._real.resize_tensor_input(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def train_head(bundle, runtime):
    bundle = load_bundle(bundle)
    interpreter = CountingInterpreter(
        select_runtime(runtime).new_interpreter(bundle.model_bytes("train_head"), 1)
    )
    model = SignatureModel(
        interpreter, bundle.manifest.models["train_head"], ("bottlenecks", "labels")
    )
    return model, interpreter


def test_tensors_are_allocated_once_and_again_only_when_the_batch_changes(train_head) -> None:
    model, interpreter = train_head
    assert interpreter.allocations == 1
    for batch in (20, 20, 20, 7, 7, 20):
        model.resize_batch(batch)
        model.write("bottlenecks", np.zeros((batch, 1280), np.float32))
        model.write("labels", np.zeros((batch, 4), np.float32))
        model.write("param_0", np.zeros((1280, 4), np.float32))
        model.write("param_1", np.zeros(4, np.float32))
        model.invoke()
        assert model.read("loss").shape == ()
    # train_head comes allocated for the full batch (20), so only "to 7, back to 20" reallocate.
    assert interpreter.allocations == 1 + 2
    assert model.batch == 20 and model.shape("bottlenecks") == (20, 1280)


def test_wrong_shape_is_refused_before_it_reaches_the_interpreter(train_head) -> None:
    model, _ = train_head
    model.resize_batch(5)
    with pytest.raises(TensorShapeError, match=r"'bottlenecks' takes shape \[5, 1280\]"):
        model.write("bottlenecks", np.zeros((6, 1280), np.float32))
    with pytest.raises(TensorShapeError, match=r"'param_0' takes shape \[1280, 4\]"):
        model.write("param_0", np.zeros((4, 1280), np.float32))
    with pytest.raises(TensorShapeError, match="float32, got int64"):
        model.write("param_1", np.zeros(4, np.int64))
    with pytest.raises(TensorShapeError, match=r"shape \[5, 1280\] cannot take 2 rows"):
        model.write_rows("bottlenecks", [np.zeros(1280, np.float32)] * 2)


def test_reads_are_copies_that_survive_the_next_invoke(train_head) -> None:
    model, _ = train_head
    model.resize_batch(2)
    labels = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32)
    model.write("labels", labels)
    model.write_rows("bottlenecks", [np.ones(1280, np.float32), np.zeros(1280, np.float32)])
    model.write("param_0", np.zeros((1280, 4), np.float32))
    model.write("param_1", np.zeros(4, np.float32))
    model.invoke()
    grad = model.read("grad_0")
    model.write("param_1", np.array([5, 0, 0, 0], np.float32))
    model.invoke()  # would raise if `grad` were a view of the interpreter's buffers
    assert not np.array_equal(grad, model.read("grad_0"))
    # Mean over the batch: sample 0 (ones) pulls class A up, sample 1 (zeros) adds nothing.
    np.testing.assert_allclose(grad[:, 0], -0.75 / 2, rtol=1e-5)
