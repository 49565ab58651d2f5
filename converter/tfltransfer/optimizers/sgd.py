"""Plain stochastic gradient descent."""

from __future__ import annotations

import tensorflow as tf

from tfltransfer.heads.layers import ParamSpec
from tfltransfer.optimizers.optimizer import Optimizer, StateSpec


class SGD(Optimizer):
    """``p -= learning_rate * g``. No state."""

    kind = "sgd"

    def __init__(self, learning_rate: float) -> None:
        if not learning_rate > 0:
            raise ValueError(f"the SGD learning rate must be > 0, got {learning_rate}")
        self.learning_rate = float(learning_rate)

    def state_specs(self, params: list[ParamSpec]) -> list[StateSpec]:
        """SGD keeps no state."""
        return []

    def update(
        self, params: list[tf.Tensor], grads: list[tf.Tensor], state: list[tf.Tensor]
    ) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """One gradient step."""
        return [p - self.learning_rate * g for p, g in zip(params, grads, strict=True)], []

    def hyperparameters(self) -> dict:
        """The learning rate."""
        return {"learning_rate": self.learning_rate}
