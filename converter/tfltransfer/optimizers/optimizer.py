"""The interface every optimizer configuration implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import tensorflow as tf

from tfltransfer.heads.layers import ParamSpec


@dataclass
class StateSpec:
    """One optimizer state tensor: name, shape and the value a fresh state is filled with."""

    name: str
    shape: tuple[int, ...]
    init: float = 0.0


class Optimizer(abc.ABC):
    """An update rule, run on the board as ``optimizer.tflite``."""

    kind: str

    @abc.abstractmethod
    def state_specs(self, params: list[ParamSpec]) -> list[StateSpec]:
        """The state tensors this optimizer keeps between steps, in feeding order."""

    @abc.abstractmethod
    def update(
        self, params: list[tf.Tensor], grads: list[tf.Tensor], state: list[tf.Tensor]
    ) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """One step: ``(new_params, new_state)``."""

    @abc.abstractmethod
    def hyperparameters(self) -> dict:
        """The manifest's ``optimizer.hyperparameters``."""
