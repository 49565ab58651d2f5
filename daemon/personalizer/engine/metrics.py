"""From the model's validation estimate (by slot) to the metrics report (by class name)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..events import MetricsReport
from ..model.evaluation import Evaluation

NO_SAMPLES = "no samples yet"


def metrics_report(
    evaluation: Evaluation, slots: Mapping[int, str], unknown_label: str, stale: bool = False
) -> MetricsReport:
    """``evaluation`` with the current names of its classes' slots; classes removed since are
    left out (as rows and as columns). ``stale``: the samples changed since it was made."""

    def name(slot: int) -> str:
        return unknown_label if slot < 0 else slots[slot]

    return MetricsReport(
        accuracy=evaluation.accuracy,
        recall={name(s): r for s, r in evaluation.recall.items() if s in slots},
        confusion={
            name(t): {name(p): n for p, n in row.items() if p < 0 or p in slots}
            for t, row in evaluation.confusion.items()
            if t in slots
        },
        unknown_rate=evaluation.unknown_rate,
        samples=evaluation.samples,
        method=evaluation.method,
        seconds=evaluation.seconds,
        ts=time.time(),
        stale=stale,
    )


def empty_report() -> MetricsReport:
    """What the metrics say when there is nothing to estimate from (every sample was removed)."""
    return MetricsReport(None, {}, {}, None, 0, NO_SAMPLES, 0.0, time.time())
