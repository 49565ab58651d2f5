"""Write a small non-image base as a SavedModel: a sound window -> its magnitude spectrum.

Usage: python spectral_base.py OUT_DIR WINDOW (runs in the converter environment)

The base takes one window of WINDOW audio samples (float32 in [-1, 1]) and returns
``log(1 + |DFT|)`` over its WINDOW / 2 frequency bins: a fixed front end like the ones sound
classifiers start with, made of two constant matrix products and element-wise ops, so the
converted bottleneck model uses TFLite builtins only.
"""

from __future__ import annotations

import sys

import keras
import numpy as np


def main(out: str, window: int) -> None:
    """Build the spectral base and export it to ``out``."""
    t = np.arange(window)[:, None]
    k = np.arange(window // 2)[None, :]
    angle = 2 * np.pi * t * k / window
    samples = keras.Input((window,), name="samples")
    real = keras.layers.Dense(window // 2, use_bias=False, trainable=False, name="cos")
    imag = keras.layers.Dense(window // 2, use_bias=False, trainable=False, name="sin")
    re, im = real(samples), imag(samples)
    real.set_weights([np.cos(angle).astype(np.float32)])
    imag.set_weights([np.sin(angle).astype(np.float32)])
    power = keras.layers.Add()(
        [keras.layers.Multiply()([re, re]), keras.layers.Multiply()([im, im])]
    )
    spectrum = keras.layers.Lambda(lambda p: keras.ops.log(1.0 + keras.ops.sqrt(p + 1e-6)))(power)
    keras.Model(samples, spectrum).export(out, verbose=False)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
