"""Adam, step for step as ``keras.optimizers.Adam`` computes it."""

from __future__ import annotations

import tensorflow as tf

from tfltransfer.heads.layers import ParamSpec
from tfltransfer.optimizers.optimizer import Optimizer, StateSpec


class Adam(Optimizer):
    """Adam with bias correction folded into the step size (Keras' formulation).

    State: first moments ``m``, second moments ``v`` (one per parameter) and ``step``, the number
    of updates done so far. The seed's Android library dropped this state between steps; the
    board runtime here keeps it.
    """

    kind = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"the Adam learning rate must be > 0, got {learning_rate}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1), got {beta1}, {beta2}")
        self.learning_rate = float(learning_rate)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)

    def state_specs(self, params: list[ParamSpec]) -> list[StateSpec]:
        """``m/<p>`` for each parameter, then ``v/<p>``, then ``step``."""
        return (
            [StateSpec(f"m/{p.name}", p.shape) for p in params]
            + [StateSpec(f"v/{p.name}", p.shape) for p in params]
            + [StateSpec("step", ())]
        )

    def update(
        self, params: list[tf.Tensor], grads: list[tf.Tensor], state: list[tf.Tensor]
    ) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """One Adam step."""
        n = len(params)
        ms, vs, step = state[:n], state[n : 2 * n], state[2 * n]
        t = step + 1.0
        alpha = (
            self.learning_rate
            * tf.sqrt(1.0 - tf.pow(self.beta2, t))
            / (1.0 - tf.pow(self.beta1, t))
        )
        new_params, new_m, new_v = [], [], []
        for p, g, m, v in zip(params, grads, ms, vs, strict=True):
            m = m + (g - m) * (1.0 - self.beta1)
            v = v + (g * g - v) * (1.0 - self.beta2)
            new_params.append(p - alpha * m / (tf.sqrt(v) + self.eps))
            new_m.append(m)
            new_v.append(v)
        return new_params, new_m + new_v + [t]

    def hyperparameters(self) -> dict:
        """Learning rate, betas, epsilon."""
        return {
            "learning_rate": self.learning_rate,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
        }
