"""Write the seed README's MLP head as a .keras file (runs in the converter environment).

Usage: python tf_keras_head.py OUT.keras NUM_CLASSES 1280|flatten IMAGE_SIZE

The head is the seed's example: Flatten, Dense(32, relu, L2), Dense(C, softmax, L2), over a
pooled (1280,) bottleneck or MobileNetV2's unpooled (ceil(size/32), ceil(size/32), 1280) one.
"""

from __future__ import annotations

import math
import sys

import keras


def main(out: str, num_classes: int, features: str, image_size: int) -> None:
    """Build the head and save it to ``out``."""
    side = math.ceil(image_size / 32)
    shape = (1280,) if features == "1280" else (side, side, 1280)
    keras.utils.set_random_seed(0)
    head = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(
                32, activation="relu", kernel_regularizer=keras.regularizers.l2(0.01)
            ),
            keras.layers.Dense(
                num_classes, activation="softmax", kernel_regularizer=keras.regularizers.l2(0.01)
            ),
        ]
    )
    head.save(out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
