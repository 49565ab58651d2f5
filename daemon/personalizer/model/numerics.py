"""Matrix products whose floating-point flags are spurious on some boards.

numpy 2 on arm64 (Debian 13's userland, its OpenBLAS) raises "divide by zero / overflow /
invalid value encountered in matmul" for products whose results are right (numpy issues 28687,
29820): three lines in the daemon's log per sample. The products here silence the flags and the
callers check what matters, that the results are finite, explicitly (:func:`finite_rows`).
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (into ``out`` when given) without numpy's floating-point warnings."""
    with np.errstate(all="ignore"):
        return np.matmul(a, b, out=out)


def finite_rows(array: np.ndarray) -> np.ndarray:
    """Which rows of a 2-D ``array`` hold finite numbers only."""
    return np.isfinite(array).all(axis=1)
