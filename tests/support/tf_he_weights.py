"""Write He-initialised random MobileNetV2 weights (runs in the converter environment).

Usage: python tf_he_weights.py IMAGE_SIZE ALPHA OUT.weights.h5

Keras' default (Glorot) initialisation shrinks MobileNetV2's activations layer after layer until
the bottleneck is about 1e-10: nothing a head could learn from. Drawing every convolution kernel
from N(0, 2 / fan_in) (He et al., for ReLU networks) keeps the features of order 1. Seeded, so
the same arguments give the same weights.
"""

from __future__ import annotations

import sys

import keras
import numpy as np


def main(image_size: int, alpha: float, out: str) -> None:
    """Build MobileNetV2 without its top, re-draw its kernels and save the weights to ``out``."""
    net = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=None
    )
    rng = np.random.default_rng(0)
    for layer in net.layers:
        if not isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D):
            continue
        weights = layer.get_weights()
        kernel = weights[0]
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        fan_in = kernel.shape[0] * kernel.shape[1] * (1 if depthwise else kernel.shape[2])
        weights[0] = (rng.standard_normal(kernel.shape) * np.sqrt(2.0 / fan_in)).astype("float32")
        layer.set_weights(weights)
    net.save_weights(out)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
