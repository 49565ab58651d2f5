"""On-device training: the trainer that runs epochs (trainer.py) and when a cycle has learnt
what it can (plateau.py). Its work is kept by personalizer.store."""
