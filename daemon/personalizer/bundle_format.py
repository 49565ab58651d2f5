"""The bundle format, version 1: file and tensor names, the seed's positional order, the manifest.

The single source of the format, shared by both packages: the converter (``tfltransfer``)
writes bundles with these names, in this order, and validates its manifest with
:class:`Manifest` before writing it; the runtime (``personalizer.model``) reads them with the
same model. docs/bundle-format.md describes it for people.

Every model has one signature, ``serving_default``; its inputs and outputs are also in the
seed's positional order (:func:`signature_order`), so consumers that read models by position
(the seed's Android ``transfer_api``, its Python test consumer) and consumers that read them by
name (this runtime, for zero-copy access) see the same contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from .schema import StrictModel

FORMAT = "tflite-transfer-bundle"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MANIFEST = "manifest.json"
MODEL_NAMES = ("initialize", "bottleneck", "train_head", "inference", "optimizer")
EDGETPU_BOTTLENECK = "bottleneck_edgetpu.tflite"
SIGNATURE_KEY = "serving_default"

# Signature tensor names. Parameters, gradients and optimizer state are numbered in the
# manifest's order (parameters: the head's layer order, kernel before bias).
ZERO = "zero"
IMAGE = "image"  # the bottleneck model's input (also for non-image bases)
BOTTLENECK = "bottleneck"
BOTTLENECKS = "bottlenecks"
LABELS = "labels"
LOSS = "loss"
PROBABILITIES = "probabilities"


def model_file(model: str) -> str:
    """The file of one of the five models: ``train_head`` -> ``train_head.tflite``."""
    return f"{model}.tflite"


def param(i: int) -> str:
    """Parameter ``i`` as an input of train_head, inference and optimizer (and initialize's
    output)."""
    return f"param_{i}"


def grad(i: int) -> str:
    """The gradient of parameter ``i`` (train_head output, optimizer input)."""
    return f"grad_{i}"


def state(j: int) -> str:
    """Optimizer state tensor ``j`` (optimizer input)."""
    return f"state_{j}"


def new_param(i: int) -> str:
    """The updated parameter ``i`` (optimizer output)."""
    return f"new_param_{i}"


def new_state(j: int) -> str:
    """The updated optimizer state tensor ``j`` (optimizer output)."""
    return f"new_state_{j}"


@dataclass(frozen=True)
class SignatureOrder:
    """A model's input and output names, in the seed's positional order."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def signature_order(model: str, num_params: int, num_state: int) -> SignatureOrder:
    """The positional contract of the seed, for every model of a bundle.

    - ``initialize``: ``[zero]`` -> ``params``
    - ``bottleneck``: ``[image]`` -> ``[bottleneck]``
    - ``train_head``: ``[bottlenecks, labels, *params]`` -> ``[loss, *grads]``
    - ``inference``: ``[bottleneck, *params]`` -> ``[probabilities]``
    - ``optimizer``: ``[*params, *grads, *state]`` -> ``[*new params, *new state]``
      (Adam's state is ``m..., v..., step``; SGD has none)
    """
    params = tuple(param(i) for i in range(num_params))
    grads = tuple(grad(i) for i in range(num_params))
    orders = {
        "initialize": SignatureOrder((ZERO,), params),
        "bottleneck": SignatureOrder((IMAGE,), (BOTTLENECK,)),
        "train_head": SignatureOrder((BOTTLENECKS, LABELS, *params), (LOSS, *grads)),
        "inference": SignatureOrder((BOTTLENECK, *params), (PROBABILITIES,)),
        "optimizer": SignatureOrder(
            (*params, *grads, *(state(j) for j in range(num_state))),
            (
                *(new_param(i) for i in range(num_params)),
                *(new_state(j) for j in range(num_state)),
            ),
        ),
    }
    if model not in orders:
        raise ValueError(f"unknown model {model!r}; the models are {', '.join(MODEL_NAMES)}")
    return orders[model]


def bundle_id_of(file_hashes: Mapping[str, str]) -> str:
    """The bundle id: the first 16 hex digits of the sha256 of the sorted
    ``"<file> <sha256>\\n"`` lines."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


# --- the manifest -------------------------------------------------------------------------------

DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "uint8": np.uint8}
DType = Literal["float32", "int32", "int64", "uint8"]


def _positive(dim: int) -> int:
    if dim < 1:
        raise ValueError("dimensions must be 1 or more")
    return dim


def _batch_or_positive(dim: int) -> int:
    if dim == 0 or dim < -1:
        raise ValueError("dimensions must be 1 or more (-1: the dynamic batch)")
    return dim


def _hex_digest(value: str) -> str:
    value = value.lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("must be 64 hex digits (a sha256)")
    return value


Dim = Annotated[StrictInt, AfterValidator(_positive)]
SignatureDim = Annotated[StrictInt, AfterValidator(_batch_or_positive)]
Shape = Annotated[tuple[Dim, ...], Field(strict=False)]
SignatureShape = Annotated[tuple[SignatureDim, ...], Field(strict=False)]
Name = Annotated[StrictStr, Field(min_length=1)]
Number = Annotated[float, Field(allow_inf_nan=False)]


class TensorSpec(StrictModel):
    """One signature tensor: its name, shape (-1: the dynamic batch) and dtype."""

    name: Name
    shape: SignatureShape
    dtype: DType

    @property
    def np_dtype(self) -> np.dtype:
        """The dtype as numpy's."""
        return np.dtype(DTYPES[self.dtype])


class ParameterSpec(StrictModel):
    """One trainable parameter of the head (it lives in the runtime, not in the models)."""

    name: Name
    shape: Shape
    dtype: Literal["float32"]
    # The axis that indexes classes, for the output layer's kernel and bias: the runtime masks
    # inactive class slots there. None: the parameter has no class axis.
    class_axis: StrictInt | None = None


class StateSpec(StrictModel):
    """One optimizer state tensor and the value a fresh state is filled with."""

    name: Name
    shape: Shape
    dtype: Literal["float32"]
    init: Number = 0.0


class InputSpec(StrictModel):
    """What the bottleneck model takes: an image in [0, 1] RGB, or any tensor."""

    kind: Literal["image", "tensor"] = "image"
    shape: Shape
    dtype: Literal["float32"] = "float32"
    range: Annotated[tuple[Number, Number], Field(strict=False)] | None = (0.0, 1.0)
    color_order: Literal["RGB"] | None = "RGB"
    layout: Literal["NHWC"] | None = "NHWC"

    @model_validator(mode="after")
    def _image_contract(self) -> InputSpec:
        if self.kind == "image":
            if len(self.shape) != 4 or self.shape[0] != 1 or self.shape[3] != 3:
                raise ValueError(f"an image input must be [1, H, W, 3], got {list(self.shape)}")
            if self.range is None or tuple(self.range) != (0.0, 1.0):
                raise ValueError(f"an image input takes values in [0, 1], not {self.range}")
        elif not self.shape or self.shape[0] != 1:
            raise ValueError(f"a tensor input must be [1, ...], got {list(self.shape)}")
        return self


class BottleneckSpec(StrictModel):
    """The bottleneck: measured from the converted base, never assumed."""

    shape: Shape
    dtype: Literal["float32"] = "float32"


class HeadSpec(StrictModel):
    """The head: its kind, layers and whether weight imprinting applies (more keys: free)."""

    model_config = ConfigDict(extra="allow")

    kind: Name
    imprintable: StrictBool = False


class OptimizerSpec(StrictModel):
    """The optimizer kind, its hyper-parameters and the layout of its state."""

    kind: Name
    hyperparameters: dict[str, Number] = {}
    state: Annotated[tuple[StateSpec, ...], Field(strict=False)]


class TrainSpec(StrictModel):
    """Training limits: the largest batch and whether smaller ones work."""

    max_batch_size: Annotated[StrictInt, Field(ge=1)]
    dynamic_batch: StrictBool = False
    loss: Literal["categorical_crossentropy"] = "categorical_crossentropy"


class ModelSpec(StrictModel):
    """One ``.tflite`` model and its signature, inputs and outputs in positional order."""

    file: Name
    requires_flex: StrictBool = False
    ops: Annotated[tuple[StrictStr, ...], Field(strict=False)] = ()
    inputs: Annotated[tuple[TensorSpec, ...], Field(strict=False)]
    outputs: Annotated[tuple[TensorSpec, ...], Field(strict=False)]


class ModelsSpec(StrictModel):
    """The five models."""

    initialize: ModelSpec
    bottleneck: ModelSpec
    train_head: ModelSpec
    inference: ModelSpec
    optimizer: ModelSpec

    def __getitem__(self, model: str) -> ModelSpec:
        if model not in MODEL_NAMES:
            raise KeyError(model)
        return getattr(self, model)

    def items(self) -> list[tuple[str, ModelSpec]]:
        """``(name, spec)`` of the five models."""
        return [(name, getattr(self, name)) for name in MODEL_NAMES]


class FileEntry(StrictModel):
    """One file of the bundle: its sha256 and size."""

    sha256: Annotated[StrictStr, AfterValidator(_hex_digest)]
    size: Annotated[StrictInt, Field(ge=0)]


class Manifest(StrictModel):
    """``manifest.json`` of a format-1 bundle: everything a runtime needs without guessing."""

    format: Literal["tflite-transfer-bundle"]
    format_version: Literal[1]
    bundle_id: Name
    created: dict[str, Any] = {}
    num_classes: Annotated[StrictInt, Field(ge=1)]
    class_names: Annotated[tuple[Name, ...], Field(strict=False)]
    input: InputSpec
    base: dict[str, Any] = {}
    bottleneck: BottleneckSpec
    head: HeadSpec
    parameters: Annotated[tuple[ParameterSpec, ...], Field(strict=False, min_length=1)]
    optimizer: OptimizerSpec
    train: TrainSpec
    requires_flex: StrictBool = False
    models: ModelsSpec
    files: dict[str, FileEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is "
                f"{self.num_classes}"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be unique, got {list(self.class_names)}")
        for name, spec in self.models.items():
            if spec.file not in self.files:
                raise ValueError(f"models.{name}.file {spec.file!r} is not listed in files")
        return self

    # -- what the runtime asks ----------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The base model's input shape, batch of 1 included: ``(1, H, W, 3)`` for images."""
        return tuple(self.input.shape)

    @property
    def is_image(self) -> bool:
        """True when the bundle takes camera images (the daemon runs only those)."""
        return self.input.kind == "image"

    @property
    def image_size(self) -> tuple[int, int]:
        """The model's input (height, width); image bundles only."""
        return self.input.shape[1], self.input.shape[2]

    @property
    def bottleneck_shape(self) -> tuple[int, ...]:
        """One bottleneck's shape, without the batch dimension."""
        return tuple(self.bottleneck.shape)

    @property
    def max_batch_size(self) -> int:
        """The largest training batch."""
        return self.train.max_batch_size

    @property
    def dynamic_batch(self) -> bool:
        """Whether train_head takes any batch from 1 to the largest."""
        return self.train.dynamic_batch

    @property
    def imprintable(self) -> bool:
        """Whether the head is one dense softmax layer (weight imprinting applies)."""
        return self.head.imprintable

    @property
    def head_kind(self) -> str:
        """The head's kind (``softmax``, ``keras``, ...)."""
        return self.head.kind

    @property
    def file_hashes(self) -> dict[str, str]:
        """file -> sha256."""
        return {name: entry.sha256 for name, entry in self.files.items()}

    def expected_signature(self, model: str) -> SignatureOrder:
        """The names ``model`` must have, in positional order."""
        return signature_order(model, len(self.parameters), len(self.optimizer.state))

    def expected_shapes(self, model: str) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """The shapes of ``model``'s inputs and outputs, in positional order, from the
        parameters, bottleneck and class count (-1: the dynamic batch)."""
        batch = (-1,) if self.dynamic_batch else (self.max_batch_size,)
        features = self.bottleneck_shape
        params = [tuple(p.shape) for p in self.parameters]
        states = [tuple(s.shape) for s in self.optimizer.state]
        shapes = {
            "initialize": ([()], params),
            "bottleneck": ([self.input_shape], [(1, *features)]),
            "train_head": (
                [batch + features, batch + (self.num_classes,), *params],
                [(), *params],
            ),
            "inference": ([(1, *features), *params], [(1, self.num_classes)]),
            "optimizer": ([*params, *params, *states], [*params, *states]),
        }
        return shapes[model]
