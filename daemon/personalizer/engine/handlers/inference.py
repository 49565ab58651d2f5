"""The command that classifies a given image (the camera is not involved): ``classify``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine


def classify(engine: Engine, command: Command) -> dict[str, Any]:
    """`classify`: the class of ``image`` (or the unknown label), its confidence and scores."""
    result = engine.model.classify(command.payload.image, engine.config.inference.unknown_label)
    return {
        "class": result.class_name,
        "confidence": float(result.confidence),
        "scores": dict(result.scores),
        "known": result.known,
    }
