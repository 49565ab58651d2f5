"""The commands about the head: ``train`` (start/stop), ``save`` and ``evaluate``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine


def train(engine: Engine, command: Command) -> dict[str, Any]:
    """`train`: start or stop (pause, and save) the background trainer."""
    if command.payload.action == "start":
        engine.imprint_if_untrained()
        engine.trainer.start()
        return {"state": "training"}  # even if a short cycle already ended meanwhile
    engine.trainer.stop(save=True)
    return {"state": "idle"}


def save(engine: Engine, command: Command) -> dict[str, Any]:
    """`save`: write the head to disk now."""
    size = engine.save_or_fail("nothing changed")
    return {"path": str(engine.store.path), "bytes": size}


def evaluate(engine: Engine, command: Command) -> dict[str, Any]:
    """`evaluate`: cross-validate on the samples now (also published on metrics)."""
    report = engine.evaluate_and_publish()
    return {
        "accuracy": report.accuracy,
        "recall": dict(report.recall),
        "confusion": {k: dict(v) for k, v in report.confusion.items()},
        "unknown_rate": report.unknown_rate,
        "samples": report.samples,
        "method": report.method,
        "seconds": round(report.seconds, 3),
        "ts": report.ts,
    }
