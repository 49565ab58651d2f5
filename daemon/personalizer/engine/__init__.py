"""The engine: commands, frames and status around one runtime model, without threads."""

from .engine import Engine

__all__ = ["Engine"]
