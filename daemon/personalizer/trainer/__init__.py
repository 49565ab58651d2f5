"""On-device training: the trainer that runs epochs, and the state store that keeps its work."""

from .state_store import LoadOutcome, StateDirError, StateStore
from .trainer import Trainer

__all__ = ["LoadOutcome", "StateDirError", "StateStore", "Trainer"]
