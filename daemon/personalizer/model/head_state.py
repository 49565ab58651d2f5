"""The saved form of a head: what the state database keeps of it and a model restores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadState:
    """The head of one bundle: parameters, optimizer state and counters, as one set."""

    bundle_id: str
    parameters: tuple[np.ndarray, ...]
    optimizer_state: tuple[np.ndarray, ...]
    steps: int
    epochs: int
