"""The state on disk: one SQLite database with the samples, the classes and the head."""

from .database import Parameters, StateDatabase
from .state import STATE_DB, LoadOutcome, StateDirError, StateStore

__all__ = ["STATE_DB", "LoadOutcome", "Parameters", "StateDatabase", "StateDirError", "StateStore"]
