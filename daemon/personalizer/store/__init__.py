"""The state on disk: one SQLite database with the samples, the classes and the head."""

from .loading import LoadOutcome
from .sqlite_file import StateDatabase
from .state import LAST_CYCLE, REGION, STATE_DB, StateDirError, StateStore

__all__ = [
    "LAST_CYCLE",
    "REGION",
    "STATE_DB",
    "LoadOutcome",
    "StateDatabase",
    "StateDirError",
    "StateStore",
]
