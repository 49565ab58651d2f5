"""Value ranges a base model expects, as the CLI and the Python API spell them (no TensorFlow)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tfltransfer.errors import BaseModelError

INPUT_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


def parse_input_range(value: str | Sequence[float]) -> tuple[float, float]:
    """``"0,1"``, ``"-1,1"``, ``"0,255"``, any ``"LOW,HIGH"`` or a pair of numbers ->
    ``(low, high)``."""
    if isinstance(value, str):
        key = value.replace(" ", "")
        if key in INPUT_RANGES:
            return INPUT_RANGES[key]
        try:
            value = [float(part) for part in key.split(",")]
        except ValueError:
            value = []
        if len(value) != 2:
            raise BaseModelError(
                f"input range {key!r} is not LOW,HIGH (e.g. {', '.join(INPUT_RANGES)})"
            )
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise BaseModelError(
            f"input range {value!r}: give two finite numbers, the upper above the lower"
        )
    return low, high
