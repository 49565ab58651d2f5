"""A consumer that reads the five models by position only, as the seed's consumers do.

The seed's Android ``transfer_api`` and its Python test consumer never look at signature names:
they take ``get_input_details()`` / ``get_output_details()`` in order and ``set_tensor`` /
``get_tensor`` by index. This one does the same (written for these tests): parameters come out of
``initialize`` by position, the optimizer state shapes are read from ``optimizer``'s inputs after
the parameters and gradients, bottlenecks are computed in batches by resizing ``bottleneck``,
training batches are fed to ``train_head`` at its default size (a short batch is padded by
repeating its rows), and accuracy is measured with ``inference`` resized to the batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """``rows`` repeated cyclically until there are ``size`` of them."""
    return np.resize(rows, (size, *rows.shape[1:])).astype(rows.dtype)


def batches(count: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` over ``count`` items."""
    for begin in range(0, count, size):
        yield slice(begin, min(begin + size, count))


class PositionalConsumer:
    """Trains and evaluates a bundle given as ``{model name: flatbuffer}`` (``_convert()``)."""

    def __init__(self, models: dict[str, bytes]) -> None:
        self.models = models
        self.params = self._initial_parameters()
        optimizer = Interpreter(model_content=models["optimizer"])
        state_inputs = optimizer.get_input_details()[2 * len(self.params) :]
        self.state = [np.zeros(d["shape"], np.float32) for d in state_inputs]
        train = Interpreter(model_content=models["train_head"])
        self.train_batch = int(train.get_input_details()[0]["shape"][0])

    def _initial_parameters(self) -> list[np.ndarray]:
        interpreter = Interpreter(model_content=self.models["initialize"])
        interpreter.allocate_tensors()
        (zero,) = interpreter.get_input_details()
        interpreter.set_tensor(zero["index"], np.float32(0.0))
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]

    def bottlenecks(self, inputs: np.ndarray, batch: int = 32) -> np.ndarray:
        """Bottlenecks of ``inputs`` (N, *input), computed ``batch`` at a time by resizing."""
        interpreter = Interpreter(model_content=self.models["bottleneck"])
        (x_in,) = interpreter.get_input_details()
        out = []
        for part in batches(len(inputs), batch):
            x = inputs[part].astype(np.float32)
            interpreter.resize_tensor_input(x_in["index"], list(x.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(x_in["index"], x)
            interpreter.invoke()
            (y_out,) = interpreter.get_output_details()
            out.append(interpreter.get_tensor(y_out["index"]))
        return np.concatenate(out)

    def train_epoch(self, bottlenecks: np.ndarray, labels: np.ndarray) -> float:
        """One pass over the data in consecutive full batches; returns the mean loss."""
        interpreter = Interpreter(model_content=self.models["train_head"])
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()
        x_in, y_in, param_ins = details[0], details[1], details[2:]
        loss_out, *grad_outs = interpreter.get_output_details()
        total, seen = 0.0, 0
        for part in batches(len(bottlenecks), self.train_batch):
            x, y = bottlenecks[part], labels[part]
            count = len(x)
            interpreter.set_tensor(x_in["index"], pad_rows(x, self.train_batch))
            interpreter.set_tensor(y_in["index"], pad_rows(y, self.train_batch))
            for detail, value in zip(param_ins, self.params, strict=True):
                interpreter.set_tensor(detail["index"], value)
            interpreter.invoke()
            grads = [interpreter.get_tensor(d["index"]) for d in grad_outs]
            self._apply(grads)
            total += float(interpreter.get_tensor(loss_out["index"])) * count
            seen += count
        return total / seen

    def _apply(self, grads: list[np.ndarray]) -> None:
        interpreter = Interpreter(model_content=self.models["optimizer"])
        interpreter.allocate_tensors()
        n = len(self.params)
        details = interpreter.get_input_details()
        values = [*self.params, *grads, *self.state]
        for detail, value in zip(details, values, strict=True):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        self.params, self.state = outputs[:n], outputs[n:]

    def probabilities(self, bottlenecks: np.ndarray, batch: int = 32) -> np.ndarray:
        """Class probabilities of ``bottlenecks``, with ``inference`` resized to each batch."""
        interpreter = Interpreter(model_content=self.models["inference"])
        x_in, *param_ins = interpreter.get_input_details()
        out = []
        for part in batches(len(bottlenecks), batch):
            x = bottlenecks[part]
            interpreter.resize_tensor_input(x_in["index"], list(x.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(x_in["index"], x)
            for detail, value in zip(param_ins, self.params, strict=True):
                interpreter.set_tensor(detail["index"], value)
            interpreter.invoke()
            (y_out,) = interpreter.get_output_details()
            out.append(interpreter.get_tensor(y_out["index"]))
        return np.concatenate(out)

    def accuracy(self, bottlenecks: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``bottlenecks`` whose most probable class is the one-hot ``labels``' class."""
        predicted = self.probabilities(bottlenecks).argmax(axis=1)
        return float(np.mean(predicted == labels.argmax(axis=1)))
