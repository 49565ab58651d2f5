"""MobileNetV2 from Keras applications as the base (the seed's default)."""

from __future__ import annotations

import contextlib
import io

import keras
import numpy as np
import tensorflow as tf

from personalizer import bundle_format as fmt
from tfltransfer.bases.base import Base, RepresentativeDataset, apply_quantization
from tfltransfer.bases.weights import resolve_weights
from tfltransfer.errors import BaseModelError


def he_initialize(net: keras.Model, seed: int = 0) -> None:
    """Redraw every convolution kernel from N(0, 2 / fan_in), seeded.

    Keras' default (Glorot) initialisation shrinks MobileNetV2's activations layer by layer
    until the bottleneck is about 1e-10, which no head can learn from; He initialisation (made
    for ReLU networks) keeps features of order 1.
    """
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if not isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D):
            continue
        weights = layer.get_weights()
        kernel = weights[0]
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        fan_in = kernel.shape[0] * kernel.shape[1] * (1 if depthwise else kernel.shape[2])
        weights[0] = (rng.standard_normal(kernel.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        layer.set_weights(weights)


class MobileNetV2Base(Base):
    """MobileNetV2 without its classifier, with its [-1, 1] input scaling folded in.

    Args:
      image_size: input height and width (96, 128, 160, 192 or 224 have ImageNet weights).
      alpha: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4).
      quantize: dynamic-range quantization of the weights.
      representative_dataset: a function yielding ``[image]`` lists, each ``(1, H, W, 3)`` float32
        in [0, 1]; when given, the model is fully int8-quantized (float input and output kept).
      weights: ``"imagenet"`` (downloads unless cached), a weights file, or None for random
        weights (seeded He initialisation: features of a usable size, for tests and demos).
      pooling: None for the ``(h, w, 1280)`` feature map, ``"avg"`` for a ``(1280,)`` vector.
    """

    def __init__(
        self,
        image_size: int = 224,
        alpha: float = 1.0,
        quantize: bool = False,
        representative_dataset: RepresentativeDataset | None = None,
        weights: str | None = "imagenet",
        pooling: str | None = None,
    ) -> None:
        if pooling not in (None, "none", "avg"):
            raise BaseModelError(f"pooling must be none or avg, got {pooling!r}")
        if int(image_size) < 32:
            raise BaseModelError(f"image_size must be at least 32, got {image_size}")
        self.image_size = int(image_size)
        self.alpha = float(alpha)
        self.quantize = bool(quantize)
        self.representative_dataset = representative_dataset
        self.weights = weights
        self.pooling = None if pooling in (None, "none") else pooling
        self._quantization = "none"

    def _network(self, weights: str | None) -> keras.Model:
        size = self.image_size
        try:
            return keras.applications.MobileNetV2(
                input_shape=(size, size, 3),
                alpha=self.alpha,
                include_top=False,
                weights=weights,
                pooling=self.pooling,
            )
        except ValueError as exc:
            raise BaseModelError(f"MobileNetV2 cannot be built: {exc}") from None

    def keras_model(self) -> keras.Model:
        """The Keras model the bottleneck is converted from: [0,1] in, features out."""
        weights = resolve_weights(self.weights, self.alpha, self.image_size)
        net = self._network(weights)
        if weights is None:
            he_initialize(net)
        size = self.image_size
        # Batch left open: the converted model takes any batch (1 by default).
        image = keras.Input((size, size, 3), name=fmt.IMAGE)
        # MobileNetV2 was trained on [-1, 1]; the runtime feeds [0, 1].
        scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(image)
        return keras.Model(image, net(scaled), name="bottleneck")

    def bottleneck_shape(self) -> tuple[int, ...]:
        """The network's output shape for this size, width and pooling, e.g. ``(7, 7, 1280)``.

        Read from the built network (without loading weights, which do not change it), so it
        costs no download; the converter measures the converted model again.
        """
        return tuple(int(d) for d in self._network(None).output.shape[1:])

    def tflite_model(self) -> bytes:
        """Convert with ``from_keras_model`` (``from_concrete_functions`` breaks variables)."""
        converter = tf.lite.TFLiteConverter.from_keras_model(self.keras_model())
        self._quantization = apply_quantization(
            converter, self.quantize, self.representative_dataset
        )
        # Keras prints its export summary to stdout; the CLI's output is the bundle table.
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()

    def manifest_info(self) -> dict:
        """Kind, size, width, pooling, weights source, native input range, quantization."""
        return {
            "kind": "mobilenetv2",
            "image_size": self.image_size,
            "alpha": self.alpha,
            "pooling": self.pooling or "none",
            "weights": "none" if self.weights in (None, "none") else str(self.weights),
            "native_input_range": [-1.0, 1.0],
            "quantization": self._quantization,
        }
