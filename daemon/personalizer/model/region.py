"""A region of the frame: the part of the camera's view the model looks at.

Set as fractions of the frame (``x``, ``y``, ``width``, ``height``), so it survives a change of
the camera's resolution. The model's input is square, and a region rarely is: the region is
padded with black to a square around it, never cropped (the model sees all of it and nothing
else) and never stretched (shapes keep their proportions). Without a region the model sees the
centre square of the whole frame, as it always did.

Applying a region costs a slice (a view, no copy) when its square fits in the frame, and one
copy into a black square when it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_SIDE = 0.02  # fractions: a region smaller than this is a mis-click, not a choice


@dataclass(frozen=True)
class Region:
    """The part of the frame the model sees, as fractions of the frame's width and height."""

    x: float
    y: float
    width: float
    height: float

    @classmethod
    def parse(cls, values: Sequence[object]) -> Region:
        """``[x, y, width, height]`` as fractions; ValueError saying what is wrong otherwise."""
        if len(values) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ValueError("must be four numbers [x, y, width, height], fractions of the frame")
        x, y, width, height = (float(v) for v in values)
        if not all(math.isfinite(v) for v in (x, y, width, height)):
            raise ValueError("must be finite numbers")
        if not (0.0 <= x < 1.0 and 0.0 <= y < 1.0):
            raise ValueError("x and y must be from 0 (left, top) to under 1")
        if width < MIN_SIDE or height < MIN_SIDE:
            raise ValueError(f"width and height must be at least {MIN_SIDE} of the frame")
        if x + width > 1.0 + 1e-9 or y + height > 1.0 + 1e-9:
            raise ValueError("x + width and y + height must be at most 1 (inside the frame)")
        return cls(x, y, min(width, 1.0 - x), min(height, 1.0 - y))

    def as_list(self) -> list[float]:
        """``[x, y, width, height]``, rounded to what a page or a config shows."""
        return [round(v, 4) for v in (self.x, self.y, self.width, self.height)]

    def box(self, frame_width: int, frame_height: int) -> tuple[int, int, int, int]:
        """The region in pixels of a frame of that size: ``(left, top, width, height)``."""
        left = min(int(round(self.x * frame_width)), frame_width - 1)
        top = min(int(round(self.y * frame_height)), frame_height - 1)
        width = max(1, min(int(round(self.width * frame_width)), frame_width - left))
        height = max(1, min(int(round(self.height * frame_height)), frame_height - top))
        return left, top, width, height

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The region of an HxWx3 frame as a square: the region itself, with black added on
        the shorter side's two ends (see the module doc)."""
        left, top, width, height = self.box(image.shape[1], image.shape[0])
        region = image[top : top + height, left : left + width]
        if width == height:
            return region
        side = max(width, height)
        square = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
        dy, dx = (side - height) // 2, (side - width) // 2
        square[dy : dy + height, dx : dx + width] = region
        return square
