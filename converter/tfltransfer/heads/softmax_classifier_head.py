"""The seed's built-in head: one dense layer with softmax, trained with hand-written gradients."""

from __future__ import annotations

import numpy as np

from tfltransfer.errors import HeadError
from tfltransfer.heads.head import Head
from tfltransfer.heads.layers import Dense, Flatten
from tfltransfer.heads.program import HeadProgram, LayerChainProgram


class SoftmaxClassifierHead(Head):
    """Flatten, then ``softmax(x @ W + b)``; parameters start at zero, as in the seed.

    Args:
      train_batch_size: largest training batch (kept for the seed's API; the converter's value
        wins when both are given).
      input_shape: shape of one bottleneck, e.g. ``(7, 7, 1280)``; None fits any base.
      num_classes: number of classes.
      l2_reg: L2 coefficient on the kernel (``l2 * sum(W**2)`` is added to the loss), or None.
    """

    def __init__(
        self,
        train_batch_size: int,
        input_shape: tuple[int, ...] | list[int] | None,
        num_classes: int,
        l2_reg: float | None = None,
    ) -> None:
        self.train_batch_size = int(train_batch_size)
        self._input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.l2_reg = float(l2_reg or 0.0)
        if self.l2_reg < 0:
            raise HeadError(f"l2_reg must be >= 0, got {l2_reg}")

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one bottleneck (None: whatever the base gives)."""
        return self._input_shape

    def build(self, bottleneck_shape: tuple[int, ...], num_classes: int) -> HeadProgram:
        """Flatten + Dense(num_classes, softmax), zero-initialised."""
        if num_classes != self.num_classes:
            raise HeadError(
                f"the softmax head was made for {self.num_classes} classes but the converter "
                f"was asked for {num_classes}; use the same number for both"
            )
        features = int(np.prod(bottleneck_shape))
        dense = Dense(
            kernel=np.zeros((features, num_classes), np.float32),
            bias=np.zeros((num_classes,), np.float32),
            activation="softmax",
            name="dense",
            kernel_l2=self.l2_reg,
        )
        return LayerChainProgram(
            layers=[Flatten(), dense], kind="softmax", extra_info={"l2_reg": self.l2_reg}
        )
