"""The interface every head configuration implements."""

from __future__ import annotations

import abc

from tfltransfer.heads.program import HeadProgram


class Head(abc.ABC):
    """A trainable head configuration: builds a :class:`HeadProgram` for a bottleneck shape."""

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one bottleneck the head expects, or None when it adapts to any."""

    @abc.abstractmethod
    def build(self, bottleneck_shape: tuple[int, ...], num_classes: int) -> HeadProgram:
        """Build the program; raise :class:`tfltransfer.errors.HeadError` when it cannot fit."""
