"""The command that changes the classes on the board: ``class`` (add, rename, remove)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..changes import ClassAdded, ClassRemoved, ClassRenamed

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine

log = logging.getLogger(__name__)


def change(engine: Engine, command: Command) -> dict[str, Any]:
    """`class`: add, rename or remove a class (the database first, then the model)."""
    payload = command.payload
    model, store = engine.model, engine.store
    registry = model.class_registry
    if payload.add is not None:
        registry.check_new(payload.add)
        slot = registry.next_slot()
        store.set_classes({**model.class_slots(), slot: payload.add})
        model.add_class(payload.add)
        engine.changes.emit(ClassAdded(payload.add))
        log.info("class %s added (slot %d)", payload.add, slot)
    elif payload.rename is not None:
        slot = registry.slot_of(payload.rename)
        if payload.to != payload.rename:
            registry.check_new(payload.to)
        store.set_classes({**model.class_slots(), slot: payload.to})
        model.rename_class(payload.rename, payload.to)
        engine.metrics_changed(samples=False)  # the same samples, under another name
        if payload.to != payload.rename:
            engine.changes.emit(ClassRenamed(payload.rename, payload.to))
        log.info("class %s renamed to %s", payload.rename, payload.to)
    else:
        slot = registry.slot_of(payload.remove)
        gone = tuple(model.sample_ids(payload.remove))
        removed = store.remove_class(slot)
        model.remove_class(payload.remove)
        engine.samples_changed()
        engine.changes.emit(ClassRemoved(payload.remove, gone))
        log.info("class %s removed with its %d sample(s)", payload.remove, removed)
    engine.status.publish()
    return {"classes": list(model.classes), "capacity": model.capacity}
