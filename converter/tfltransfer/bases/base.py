"""The interface every base configuration implements, and the quantization they share."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from tfltransfer.errors import QuantizationError

RepresentativeDataset = Callable[[], Iterable[list[np.ndarray]]]


IMAGE_INPUT = {"kind": "image", "dtype": "float32", "range": [0.0, 1.0], "color_order": "RGB",
               "layout": "NHWC"}  # fmt: skip


class Base(abc.ABC):
    """A frozen base model, converted to ``bottleneck.tflite``.

    The converted model takes a batch of inputs (any batch size; 1 by default) and returns
    their bottlenecks. An image base takes ``(N, H, W, 3)`` float32 RGB in [0, 1] and folds its
    own input scaling into the model, so every runtime feeds the same thing; a tensor base takes
    any fixed-shape float32 input as it is (sound, sensor vectors).
    """

    @abc.abstractmethod
    def tflite_model(self) -> bytes:
        """The converted bottleneck model (batch dimension dynamic)."""

    @abc.abstractmethod
    def manifest_info(self) -> dict:
        """The manifest's ``base`` entry (kind, sizes, native input range, quantization)."""

    @abc.abstractmethod
    def bottleneck_shape(self) -> tuple[int, ...]:
        """The shape of one bottleneck (no batch dimension), measured from the model."""

    def input_info(self) -> dict:
        """The manifest's ``input`` entry without its shape (the converter measures that):
        ``kind``, ``dtype``, ``range``, ``color_order``, ``layout``. Image bases by default."""
        return dict(IMAGE_INPUT)


def quantization_mode(quantize: bool, representative_dataset: RepresentativeDataset | None) -> str:
    """``none``, ``dynamic_range`` or ``int8`` (full integer with float input and output)."""
    if representative_dataset is not None:
        return "int8"
    return "dynamic_range" if quantize else "none"


def apply_quantization(
    converter: tf.lite.TFLiteConverter,
    quantize: bool,
    representative_dataset: RepresentativeDataset | None,
) -> str:
    """Configure ``converter`` for the chosen quantization and return its name.

    Full-integer quantization keeps float32 input and output tensors (the model quantizes and
    dequantizes at its edges) so the board runtime feeds and reads the same thing either way.
    """
    mode = quantization_mode(quantize, representative_dataset)
    if mode == "none":
        return mode
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        if not callable(representative_dataset):
            raise QuantizationError("representative_dataset must be a function returning samples")
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return mode
