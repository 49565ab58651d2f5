"""Synthetic camera frames whose class a random-weight MobileNetV2 can tell apart."""

from __future__ import annotations

import numpy as np

NUM_HUES = 4


def colour_image(
    class_index: int,
    rng: np.random.Generator,
    size: tuple[int, int] = (120, 160),
    hue_noise: float = 0.0,
) -> np.ndarray:
    """A uint8 RGB frame whose hue gives its class (4 hues 90 degrees apart).

    Each frame also gets pixel noise and a random brightness shift; ``hue_noise`` (radians)
    makes neighbouring classes overlap, for data sets that are not trivially separable.
    Random-weight MobileNetV2 features respond mostly to colour, so these classes are learnable
    without ImageNet weights.
    """
    hue = 2 * np.pi * class_index / NUM_HUES + rng.normal(0, hue_noise)
    colour = 0.5 + 0.25 * np.array([np.cos(hue), np.cos(hue - 2.09), np.cos(hue + 2.09)])
    pixels = colour + rng.normal(0, 0.03, (*size, 3)) + rng.uniform(-0.15, 0.15)
    return (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
