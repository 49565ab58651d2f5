"""A zero-copy handle on one interpreter's ``serving_default`` signature.

The manifest names every tensor; this module maps the names to the interpreter's tensor indices
(TFLite orders tensors as it likes) and reads and writes them through ``interpreter.tensor()``
views, so feeding a model copies each array once, straight into the interpreter's buffer.

Two rules of the TFLite Python API shape this code:

- ``invoke()`` and ``allocate_tensors()`` raise while any numpy view of the interpreter's buffers
  is alive, so views are only ever temporaries (``self._views[name]()`` used in one expression),
  and the signature runner, which holds a reference to the native interpreter too, is dropped as
  soon as the indices are read.
- Writing an array of the wrong shape would be a crash or silent garbage, so every write checks
  shape and dtype first and raises :class:`TensorShapeError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..bundle_format import ModelSpec, TensorSpec
from ..errors import BundleError, TensorShapeError


class SignatureModel:
    """One model of a bundle, fed and read by signature name.

    Not thread-safe: the owner serialises calls (one lock per interpreter).
    """

    def __init__(self, interpreter: Any, spec: ModelSpec, batch_inputs: Sequence[str] = ()) -> None:
        """Resolve ``spec``'s names against ``interpreter`` and allocate its tensors once.

        ``batch_inputs`` names the inputs whose first dimension is the dynamic batch.
        """
        self.name = spec.file.removesuffix(".tflite")
        self._interpreter = interpreter
        self._batch_inputs = tuple(batch_inputs)
        inputs, outputs = _signature_details(interpreter, spec)
        _check_against_manifest(spec, inputs, outputs)
        self._index = {name: int(d["index"]) for name, d in (inputs | outputs).items()}
        self._dtype = {name: np.dtype(d["dtype"]) for name, d in (inputs | outputs).items()}
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self._views: dict[str, Callable[[], np.ndarray]] = {
            name: interpreter.tensor(index) for name, index in self._index.items()
        }
        # A fixed dimension the model left open (-1) gets the manifest's size; the dynamic batch
        # starts at the model's default (train_head: the largest batch) and is resized on demand.
        for tensor in spec.inputs:
            if -1 not in tensor.shape and tuple(inputs[tensor.name]["shape"]) != tensor.shape:
                interpreter.resize_tensor_input(self._index[tensor.name], list(tensor.shape))
        interpreter.allocate_tensors()
        self._shape = {name: tuple(view().shape) for name, view in self._views.items()}
        self._batch = self._shape[self._batch_inputs[0]][0] if self._batch_inputs else None

    @property
    def input_names(self) -> tuple[str, ...]:
        """The signature's input names."""
        return self._inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        """The signature's output names."""
        return self._outputs

    @property
    def batch(self) -> int | None:
        """The batch the dynamic inputs are currently allocated for (None: no dynamic input)."""
        return self._batch

    def shape(self, name: str) -> tuple[int, ...]:
        """The current shape of tensor ``name``."""
        return self._shape[name]

    def resize_batch(self, batch: int) -> None:
        """Give the dynamic batch inputs batch ``batch``; reallocates only when it changes."""
        if batch == self._batch:
            return
        if not self._batch_inputs:
            raise TensorShapeError(f"{self.name}.tflite has no dynamic batch input to resize")
        for name in self._batch_inputs:
            shape = (batch, *self._shape[name][1:])
            self._interpreter.resize_tensor_input(self._index[name], list(shape), strict=True)
        self._interpreter.allocate_tensors()
        # Outputs (and nothing else) may change shape with the batch: read them back.
        for name, view in self._views.items():
            self._shape[name] = tuple(view().shape)
        self._batch = batch

    def write(self, name: str, value: np.ndarray | float) -> None:
        """Copy ``value`` into input ``name`` after checking its shape and dtype."""
        value = np.asarray(value)
        want_shape, want_dtype = self._shape[name], self._dtype[name]
        if value.shape != want_shape:
            raise TensorShapeError(
                f"{self.name}.tflite input {name!r} takes shape {list(want_shape)}, got "
                f"{list(value.shape)}"
            )
        # Same kind only (float64 -> float32 is fine): ints in a float tensor are a caller bug.
        if value.dtype.kind != want_dtype.kind:
            raise TensorShapeError(
                f"{self.name}.tflite input {name!r} takes {want_dtype}, got {value.dtype}"
            )
        if want_shape == ():
            # tensor() gives a numpy scalar, not a view, for 0-d tensors: copy through the API.
            self._interpreter.set_tensor(self._index[name], value.astype(want_dtype))
        else:
            self._views[name]()[...] = value

    def fill(self, name: str, writer: Callable[[np.ndarray], None]) -> None:
        """Let ``writer(view)`` write input ``name`` in place (the view is dropped after)."""
        view = self._views[name]()
        try:
            writer(view)
        finally:
            del view

    def write_rows(self, name: str, source: Sequence[np.ndarray]) -> None:
        """Fill input ``name`` row by row from ``source`` (one array per batch row), no staging."""
        try:
            np.stack(source, axis=0, out=self._views[name]())
        except (ValueError, TypeError) as err:  # numpy checks every row against the tensor
            raise TensorShapeError(
                f"{self.name}.tflite input {name!r} of shape {list(self._shape[name])} cannot "
                f"take {len(source)} rows of shapes {sorted({tuple(r.shape) for r in source})} "
                f"({err})"
            ) from None

    def modify(
        self, names: Sequence[str], change: Callable[[list[np.ndarray], Any], None], arg: Any
    ) -> None:
        """Let ``change(views, arg)`` edit inputs ``names`` in place (views dropped after)."""
        views = [self._views[name]() for name in names]
        try:
            change(views, arg)
        finally:
            del views

    def read(self, name: str) -> np.ndarray:
        """A copy of tensor ``name`` (safe to keep across later invokes)."""
        return np.array(self._views[name](), copy=True)

    def copy_to(self, name: str, other: SignatureModel, other_name: str) -> None:
        """Copy tensor ``name`` straight into ``other``'s input ``other_name`` (one memcpy).

        ``other`` may be this model (an optimizer's new state back into its state input).
        """
        shape = self._shape[name]
        if shape != other._shape[other_name] or self._dtype[name] != other._dtype[other_name]:
            raise TensorShapeError(
                f"cannot copy {self.name}.tflite {name!r} {list(shape)} {self._dtype[name]} to "
                f"{other.name}.tflite {other_name!r} {list(other._shape[other_name])} "
                f"{other._dtype[other_name]}"
            )
        if shape == ():
            value = np.asarray(self._views[name](), dtype=self._dtype[name])
            other._interpreter.set_tensor(other._index[other_name], value)
        else:
            other._views[other_name]()[...] = self._views[name]()

    def invoke(self) -> None:
        """Run the model on the inputs written so far."""
        self._interpreter.invoke()


def _signature_details(
    interpreter: Any, spec: ModelSpec
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Input and output details of the model's only signature, by name."""
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        raise BundleError(
            f"{spec.file} has signatures {sorted(signatures)}; format 1 requires exactly one "
            "(serving_default). Convert the bundle again"
        )
    runner = interpreter.get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    # The runner keeps a reference to the native interpreter, which would make every later
    # invoke() believe a tensor view is still alive: drop it now.
    del runner
    # interpreter.tensor()/invoke() work on the primary subgraph; the signature must be it.
    primary = {int(d["index"]) for d in interpreter.get_input_details()}
    if {int(d["index"]) for d in inputs.values()} != primary:
        raise BundleError(
            f"{spec.file}: the signature's inputs are not the model's primary inputs; format 1 "
            "models have one signature over the main graph. Convert the bundle again"
        )
    return inputs, outputs


def _check_against_manifest(
    spec: ModelSpec, inputs: dict[str, dict[str, Any]], outputs: dict[str, dict[str, Any]]
) -> None:
    """Refuse a model whose signature differs from what the manifest lists."""
    for kind, listed, actual in (
        ("inputs", spec.inputs, inputs),
        ("outputs", spec.outputs, outputs),
    ):
        names = [t.name for t in listed]
        if sorted(names) != sorted(actual):
            raise BundleError(
                f"{spec.file}: signature {kind} are {sorted(actual)}, the manifest lists "
                f"{sorted(names)}; the manifest does not belong to this model"
            )
        for tensor in listed:
            _check_tensor(spec, kind, tensor, actual[tensor.name])


def _check_tensor(spec: ModelSpec, kind: str, tensor: TensorSpec, detail: dict[str, Any]) -> None:
    signature_shape = tuple(int(x) for x in detail.get("shape_signature", detail["shape"]))
    listed = tensor.shape
    # -1 in the model is an open dimension, which fits any listed size; -1 in the manifest is
    # the dynamic batch, which the model must leave open.
    if len(signature_shape) != len(listed) or any(
        want != got and got != -1 for want, got in zip(listed, signature_shape, strict=True)
    ):
        raise BundleError(
            f"{spec.file}: {kind[:-1]} {tensor.name!r} has shape {list(signature_shape)} in the "
            f"model, the manifest says {list(listed)}"
        )
    if np.dtype(detail["dtype"]) != tensor.np_dtype:
        raise BundleError(
            f"{spec.file}: {kind[:-1]} {tensor.name!r} is {np.dtype(detail['dtype'])} in the "
            f"model, the manifest says {tensor.np_dtype}"
        )
