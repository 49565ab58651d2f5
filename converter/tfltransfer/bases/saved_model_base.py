"""Any image model saved as a TensorFlow SavedModel, used as the base."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from tfltransfer.bases.base import Base, RepresentativeDataset, apply_quantization
from tfltransfer.errors import BaseModelError
from tfltransfer.saved_models import load_serving_signature

INPUT_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


def parse_input_range(value: str | Sequence[float]) -> tuple[float, float]:
    """``"0,1"``, ``"-1,1"``, ``"0,255"`` or a pair of numbers -> ``(low, high)``."""
    if isinstance(value, str):
        key = value.replace(" ", "")
        if key not in INPUT_RANGES:
            raise BaseModelError(f"input range {value!r} is not one of {', '.join(INPUT_RANGES)}")
        return INPUT_RANGES[key]
    low, high = (float(v) for v in value)
    if not high > low:
        raise BaseModelError(f"input range {value!r}: the upper bound must exceed the lower")
    return low, high


class SavedModelBase(Base):
    """A base loaded from a SavedModel directory, with one image input ``(N, H, W, 3)``.

    Args:
      model_dir: the SavedModel directory.
      quantize: dynamic-range quantization.
      representative_dataset: full int8 quantization with these ``[0, 1]`` samples.
      input_range: the range the model expects (``"0,1"``, ``"-1,1"``, ``"0,255"``); the
        scaling from [0, 1] is folded into the converted model.
    """

    def __init__(
        self,
        model_dir: str | Path,
        quantize: bool = False,
        representative_dataset: RepresentativeDataset | None = None,
        input_range: str | Sequence[float] = "0,1",
    ) -> None:
        self.model_dir = str(model_dir)
        self.quantize = bool(quantize)
        self.representative_dataset = representative_dataset
        self.input_range = parse_input_range(input_range)
        self._quantization = "none"
        self._loaded, self._signature, self._input_name, spec = load_serving_signature(
            self.model_dir,
            BaseModelError,
            "Save a Keras model with model.export(DIR) or tf.saved_model.save(model, DIR)",
        )
        shape = spec.shape
        if shape.rank != 4 or shape[3] != 3 or shape[1] is None or shape[2] is None:
            raise BaseModelError(
                f"{self.model_dir}: the base input must be (batch, height, width, 3) with a fixed "
                f"height and width, got {shape}"
            )
        self.image_size = (int(shape[1]), int(shape[2]))

    def tflite_model(self) -> bytes:
        """Wrap the model with the input scaling, re-save it, and convert that SavedModel."""
        low, high = self.input_range
        signature, name = self._signature, self._input_name
        height, width = self.image_size
        spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")

        class Scaled(tf.Module):
            def __init__(self, inner: object) -> None:
                super().__init__()
                self.inner = inner

            @tf.function(input_signature=[spec])
            def serve(self, image: tf.Tensor) -> dict:
                outputs = signature(**{name: image * (high - low) + low})
                return {"bottleneck": next(iter(outputs.values()))}

        module = Scaled(self._loaded)
        with tempfile.TemporaryDirectory(prefix="tfltransfer-base-") as tmp:
            tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            self._quantization = apply_quantization(
                converter, self.quantize, self.representative_dataset
            )
            return converter.convert()

    def manifest_info(self) -> dict:
        """Kind, source directory, native input range, quantization."""
        return {
            "kind": "saved_model",
            "model_dir": self.model_dir,
            "image_size": list(self.image_size),
            "native_input_range": list(self.input_range),
            "quantization": self._quantization,
        }
