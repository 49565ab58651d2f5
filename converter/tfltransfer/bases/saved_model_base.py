"""Any model saved as a TensorFlow SavedModel with one fixed-shape input, used as the base.

Image models (input ``(N, H, W, 3)``) take RGB in [0, 1] like every image bundle, with the
model's own input scaling folded in. Any other input (a sound window, a sensor vector, an
embedding) is a *tensor* base: the runtime feeds arrays of that shape as they are.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import tensorflow as tf

from personalizer import bundle_format as fmt
from tfltransfer.bases.base import IMAGE_INPUT, Base, RepresentativeDataset, apply_quantization
from tfltransfer.errors import BaseModelError
from tfltransfer.input_range import INPUT_RANGES, parse_input_range
from tfltransfer.saved_models import load_serving_signature

__all__ = ["INPUT_KINDS", "INPUT_RANGES", "SavedModelBase", "parse_input_range"]

INPUT_KINDS = ("auto", "image", "tensor")
InputKind = Literal["auto", "image", "tensor"]

log = logging.getLogger(__name__)


def _is_image_shape(shape: tf.TensorShape) -> bool:
    return shape.rank == 4 and shape[3] == 3


class SavedModelBase(Base):
    """A base loaded from a SavedModel directory with one fixed-shape float32 input.

    Args:
      model_dir: the SavedModel directory (its ``serving_default`` signature, or its only one).
      quantize: dynamic-range quantization.
      representative_dataset: full int8 quantization with these samples (``[array]`` lists of
        the converted model's input: ``[0, 1]`` images, or tensors as the model takes them).
      input_range: images: the range the model expects (``"0,1"``, ``"-1,1"``, ``"0,255"``,
        ``"LOW,HIGH"``; default ``0,1``); the scaling from [0, 1] is folded into the converted
        model. Tensors: the range of the values the model takes, recorded in the manifest for
        the runtime to check (default: none), nothing folded.
      input_kind: ``auto`` (an ``(N, H, W, 3)`` input is an image, anything else a tensor),
        ``image`` or ``tensor``.
    """

    def __init__(
        self,
        model_dir: str | Path,
        quantize: bool = False,
        representative_dataset: RepresentativeDataset | None = None,
        input_range: str | Sequence[float] | None = None,
        input_kind: InputKind = "auto",
    ) -> None:
        if input_kind not in INPUT_KINDS:
            raise BaseModelError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        self.model_dir = str(model_dir)
        self.quantize = bool(quantize)
        self.representative_dataset = representative_dataset
        self._quantization = "none"
        self._loaded, self._signature, self._input_name, spec = load_serving_signature(
            self.model_dir,
            BaseModelError,
            "Save a Keras model with model.export(DIR) or tf.saved_model.save(model, DIR)",
        )
        shape = spec.shape
        where = f"{self.model_dir}: the base input"
        if shape.rank is None or shape.rank < 2 or not all(d is not None for d in shape[1:]):
            raise BaseModelError(
                f"{where} must be (batch, ...) with every other dimension fixed, got {shape}"
            )
        if shape[0] not in (None, 1):
            raise BaseModelError(f"{where} has a fixed batch of {shape[0]}; export it with None")
        if spec.dtype != tf.float32:
            raise BaseModelError(
                f"{where} is {spec.dtype.name}; bundles take float32 inputs, so export the model "
                "with a float32 input (cast inside the model if it needs integers)"
            )
        outputs = self._signature.structured_outputs
        if not isinstance(outputs, dict) or len(outputs) != 1:
            names = sorted(outputs) if isinstance(outputs, dict) else outputs
            raise BaseModelError(
                f"{self.model_dir}: the base has outputs {names}; a base must have exactly one"
            )
        self.input_kind = (
            ("image" if _is_image_shape(shape) else "tensor")
            if input_kind == "auto"
            else input_kind
        )
        if self.input_kind == "image" and not _is_image_shape(shape):
            raise BaseModelError(
                f"{where} must be (batch, height, width, 3) for an image base, got {shape}; "
                "use input_kind='tensor' (--base_input_kind tensor) for other inputs"
            )
        self.input_shape = tuple(int(d) for d in shape[1:])
        # A model exported with batch 1 cannot take other batches; the bundle keeps that.
        self._batch = None if shape[0] is None else 1
        if self.input_kind == "image":
            self.image_size = (self.input_shape[0], self.input_shape[1])
            self.input_range = parse_input_range("0,1" if input_range is None else input_range)
        else:
            self.input_range = None if input_range is None else parse_input_range(input_range)

    def _input_spec(self) -> tf.TensorSpec:
        # The bundle's input has one name for every kind (bundle_format.IMAGE).
        return tf.TensorSpec([self._batch, *self.input_shape], tf.float32, name=fmt.IMAGE)

    def _serve(self) -> tf.Module:
        """The model wrapped with the input scaling (images) and the bundle's names."""
        signature, name = self._signature, self._input_name
        scale = None
        if self.input_kind == "image":
            low, high = self.input_range
            scale = (high - low, low)
        spec = self._input_spec()

        class Serve(tf.Module):
            def __init__(self, inner: object) -> None:
                super().__init__()
                self.inner = inner

            @tf.function(input_signature=[spec])
            def serve(self, image: tf.Tensor) -> dict:
                x = image if scale is None else image * scale[0] + scale[1]
                (output,) = signature(**{name: x}).values()
                return {fmt.BOTTLENECK: output}

        return Serve(self._loaded)

    def bottleneck_shape(self) -> tuple[int, ...]:
        """Measured by running the model on one zero input."""
        zeros = tf.zeros([1, *self.input_shape], tf.float32)
        (output,) = self._serve().serve(zeros).values()
        return tuple(int(d) for d in output.shape[1:])

    def tflite_model(self) -> bytes:
        """Wrap the model (input scaling, names), re-save it, and convert that SavedModel."""
        if self._batch is not None:
            log.warning(
                "%s has a fixed batch of 1: the bundle's bottleneck model takes one input at a "
                "time (export the model with batch None to allow batches)",
                self.model_dir,
            )
        module = self._serve()
        with tempfile.TemporaryDirectory(prefix="tfltransfer-base-") as tmp:
            tf.saved_model.save(module, tmp, signatures={fmt.SIGNATURE_KEY: module.serve})
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            self._quantization = apply_quantization(
                converter, self.quantize, self.representative_dataset
            )
            return converter.convert()

    def input_info(self) -> dict:
        """Images: RGB in [0, 1]. Tensors: float32 with the declared range, if any."""
        if self.input_kind == "image":
            return dict(IMAGE_INPUT)
        return {
            "kind": "tensor",
            "dtype": "float32",
            "range": None if self.input_range is None else list(self.input_range),
            "color_order": None,
            "layout": None,
        }

    def manifest_info(self) -> dict:
        """Kind, source directory, input kind and shape, native input range, quantization."""
        info = {
            "kind": "saved_model",
            "model_dir": self.model_dir,
            "input_kind": self.input_kind,
            "input_shape": list(self.input_shape),
            "native_input_range": None if self.input_range is None else list(self.input_range),
            "quantization": self._quantization,
        }
        if self.input_kind == "image":
            info["image_size"] = list(self.image_size)
        return info
