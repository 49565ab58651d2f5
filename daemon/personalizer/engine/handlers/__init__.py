"""What each command does: one handler per command, in modules by concern.

A handler is a plain function ``(engine, command) -> result fields``; it raises CommandError
(or an error the engine turns into a refusal) when the command cannot be carried out. The table
below is the one place that says which handler runs which command; a test checks that every
command of the payload models (commands/payloads.py) has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import classes, inference, review, samples, training, view

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine

Handler = Callable[["Engine", "Command"], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "sample": samples.sample,
    "samples": samples.listing,
    "sample_delete": samples.delete,
    "relabel": samples.relabel,
    "thumbnail": samples.thumbnail,
    "reset": samples.reset,
    "class": classes.change,
    "train": training.train,
    "save": training.save,
    "evaluate": training.evaluate,
    "classify": inference.classify,
    "region": view.region,
    "review": review.listing,
    "review_label": review.label,
}
