"""Optimizers that run on the board as ``optimizer.tflite``."""

from tfltransfer.optimizers.adam import Adam
from tfltransfer.optimizers.optimizer import Optimizer, StateSpec
from tfltransfer.optimizers.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer", "StateSpec"]
