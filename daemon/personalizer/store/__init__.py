"""The state on disk: one SQLite database with the samples, the classes and the head."""

from .loading import LoadOutcome
from .sqlite_file import StateDatabase
from .state import STATE_DB, StateDirError, StateStore

__all__ = ["STATE_DB", "LoadOutcome", "StateDatabase", "StateDirError", "StateStore"]
