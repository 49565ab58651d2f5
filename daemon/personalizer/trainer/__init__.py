"""On-device training: the trainer that runs epochs (its work is kept by personalizer.store)."""

from .trainer import Trainer

__all__ = ["Trainer"]
