"""Class slots: a bundle has ``num_classes`` output slots; the board uses as many as it needs.

Classes are added, renamed and removed on the board without converting the bundle again. A slot
is *active* while its class has samples; the others are masked by the runtime, exactly where
the head meets the classes:

- logits: the output layer's bias of an inactive slot is fed as :data:`MASKED_LOGIT`, so its
  softmax share is 0 in training and inference (its gradient is then 0 as well);
- gradients: the class columns of the output layer's kernel and bias are zeroed for inactive
  slots before the optimizer runs, so L2 terms cannot move them either;
- probabilities: inference renormalises over the active slots (exact for a softmax output,
  and the only mask a head without an output bias gets).

The class axis of each parameter comes from the manifest (``parameters[i].class_axis``); for
bundles written before it existed, the output layer is recognised by its shapes: the last
parameter ``(C,)`` (bias) and the one before ``(..., C)`` (kernel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..bundle_format import Manifest

MASKED_LOGIT = -1.0e4  # exp(-1e4) is 0 in float32; small enough not to overflow anything


def class_axes(manifest: Manifest) -> tuple[int | None, ...]:
    """For each parameter, the axis that indexes classes (None: none)."""
    declared = tuple(p.class_axis for p in manifest.parameters)
    if any(axis is not None for axis in declared):
        return tuple(
            None if axis is None else axis % len(p.shape)
            for axis, p in zip(declared, manifest.parameters, strict=True)
        )
    shapes = [tuple(p.shape) for p in manifest.parameters]
    classes = manifest.num_classes
    axes: list[int | None] = [None] * len(shapes)
    if shapes and shapes[-1] == (classes,):
        axes[-1] = 0
        if len(shapes) >= 2 and len(shapes[-2]) >= 2 and shapes[-2][-1] == classes:
            axes[-2] = len(shapes[-2]) - 1
    elif shapes and len(shapes[-1]) >= 2 and shapes[-1][-1] == classes:
        axes[-1] = len(shapes[-1]) - 1
    return tuple(axes)


def _index(ndim: int, axis: int, slots: np.ndarray) -> tuple[slice | np.ndarray, ...]:
    where: list[slice | np.ndarray] = [slice(None)] * ndim
    where[axis] = slots
    return tuple(where)


class SlotMask:
    """Which parameters carry classes, and how to mask the inactive slots in them."""

    def __init__(self, manifest: Manifest) -> None:
        self.num_slots = manifest.num_classes
        self.axes = class_axes(manifest)
        # The output bias: one value per slot, where a logit is masked.
        self.biases = tuple(
            i
            for i, (axis, p) in enumerate(zip(self.axes, manifest.parameters, strict=True))
            if axis == 0 and len(p.shape) == 1
        )

    def masked(self, params: Sequence[np.ndarray], active: np.ndarray) -> tuple[np.ndarray, ...]:
        """``params`` with the inactive slots' output bias at MASKED_LOGIT (copies only of the
        biases that change)."""
        if active.all():
            return tuple(params)
        out = list(params)
        for i in self.biases:
            bias = np.array(params[i], dtype=np.float32, copy=True)
            bias[~active] = MASKED_LOGIT
            out[i] = bias
        return tuple(out)

    def zero_inactive(self, arrays: Sequence[np.ndarray], active: np.ndarray) -> None:
        """Zero, in place, the inactive slots of every class-carrying array (gradients)."""
        if active.all():
            return
        inactive = np.flatnonzero(~active)
        for axis, array in zip(self.axes, arrays, strict=True):
            if axis is not None:
                array[_index(array.ndim, axis, inactive)] = 0.0

    def with_slots_from(
        self, params: Sequence[np.ndarray], source: Sequence[np.ndarray], slots: Sequence[int]
    ) -> tuple[np.ndarray, ...]:
        """``params`` with the class columns of ``slots`` taken from ``source`` (a reset)."""
        return slots_from(params, source, self.axes, slots)

    @staticmethod
    def renormalised(probabilities: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Probabilities over the active slots only (all zero when none is active)."""
        masked = np.where(active, probabilities, 0.0)
        total = float(masked.sum())
        return masked / total if total > 0 else masked


def slots_from(
    arrays: Sequence[np.ndarray],
    sources: Sequence[np.ndarray],
    axes: Sequence[int | None],
    slots: Sequence[int],
) -> tuple[np.ndarray, ...]:
    """``arrays`` with the class columns ``slots`` (along each array's class axis in ``axes``;
    None: no class axis, kept as it is) taken from ``sources``; changed arrays are copies."""
    chosen = np.asarray(list(slots), dtype=np.int64)
    out = []
    for axis, value, fresh in zip(axes, arrays, sources, strict=True):
        if axis is None or not len(chosen):
            out.append(value)
            continue
        copy = np.array(value, dtype=np.float32, copy=True)
        where = _index(copy.ndim, axis, chosen)
        copy[where] = np.asarray(fresh)[where]
        out.append(copy)
    return tuple(out)
