"""From the model's validation estimate (by slot) to the metrics report (by class name)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..events import MetricsReport
from ..model.evaluation import Evaluation


def metrics_report(
    evaluation: Evaluation, slots: Mapping[int, str], unknown_label: str
) -> MetricsReport:
    """``evaluation`` with class names for slots (classes gone meanwhile are left out)."""

    def name(slot: int) -> str:
        return unknown_label if slot < 0 else slots.get(slot, f"slot {slot}")

    return MetricsReport(
        accuracy=evaluation.accuracy,
        recall={name(s): r for s, r in evaluation.recall.items() if s in slots},
        confusion={
            name(t): {name(p): n for p, n in row.items()}
            for t, row in evaluation.confusion.items()
            if t in slots
        },
        unknown_rate=evaluation.unknown_rate,
        samples=evaluation.samples,
        method=evaluation.method,
        seconds=evaluation.seconds,
        ts=time.time(),
    )
