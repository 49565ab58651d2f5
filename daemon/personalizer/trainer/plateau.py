"""When a training cycle has learnt what it can: the plateau rule.

A cycle ends by itself when the epoch loss stops improving: after :data:`PATIENCE` epochs in a
row that did not beat the best loss so far by :data:`MIN_IMPROVEMENT` (relative), or at once when
the loss is under :data:`CONVERGED`, and in any case after :data:`MAX_EPOCHS`. A few shots of a
few classes converge in tens of epochs (on a softmax head the loss keeps shrinking slowly for
hundreds more, which teaches nothing new: 217 epochs to a loss of 0.0001 was measured before
this rule, at 5 loss messages a second).
"""

from __future__ import annotations

import math

PATIENCE = 5
MIN_IMPROVEMENT = 0.02
CONVERGED = 0.005
MAX_EPOCHS = 300

# Why a cycle ended, as the status and the log say it.
REASONS = {
    "plateau": "the loss stopped improving",
    "converged": "the loss is as low as it gets",
    "limit": f"it reached {MAX_EPOCHS} epochs",
    "epochs": "it ran the configured epochs_per_cycle",
    "stopped": "it was stopped",
    "no samples": "every sample was removed",
}


class Plateau:
    """Follows a cycle's epoch losses and says when the cycle should end, and why."""

    def __init__(self) -> None:
        """A new cycle."""
        self.best = math.inf
        self.stale = 0  # epochs since the best improved enough
        self.epochs = 0

    def update(self, loss: float) -> str | None:
        """Take one epoch's loss; the reason to end the cycle now (a key of REASONS), or None."""
        self.epochs += 1
        if not math.isfinite(loss):
            self.stale += 1
        elif loss < self.best * (1.0 - MIN_IMPROVEMENT):
            self.best = loss
            self.stale = 0
        else:
            self.best = min(self.best, loss)
            self.stale += 1
        if math.isfinite(loss) and loss < CONVERGED:
            return "converged"
        if self.stale >= PATIENCE:
            return "plateau"
        if self.epochs >= MAX_EPOCHS:
            return "limit"
        return None
