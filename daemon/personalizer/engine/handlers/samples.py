"""The commands about samples: take one, list them, delete, relabel, a thumbnail, reset.

Data path of a sample: the `sample` command -> model.embed (bottleneck + the crop it saw) ->
one INSERT in the state database (durable) -> the model's samples -> `sample` event -> status.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ...commands import CommandError
from ...images import encode_image
from ..changes import SampleDeleted, SampleRelabelled

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine

log = logging.getLogger(__name__)

CROP_SIZE = 224  # stored crops are at least this big, so a larger model can use them too
CROP_QUALITY = 90


def sample(engine: Engine, command: Command) -> dict[str, Any]:
    """`sample`: the current frame (or ``image``) as a sample of class ``class``."""
    model, store = engine.model, engine.store
    class_name = command.payload.class_name
    model.class_registry.slot_of(class_name)  # an unknown class is refused before any work
    given = command.payload.image
    image: np.ndarray = (
        given if given is not None else engine.frames.view(engine.current_frame().image)
    )
    bottleneck, crop = model.embed(image, CROP_SIZE)
    jpeg = None
    if crop is not None and store.store_images:
        jpeg = encode_image(crop, "JPEG", CROP_QUALITY)
    return engine.add_sample(class_name, bottleneck, jpeg, command.source, view=crop)


def listing(engine: Engine, command: Command) -> dict[str, Any]:
    """`samples`: a page of the stored samples (optionally of one class)."""
    payload = command.payload
    model = engine.model
    slots = model.class_slots()
    slot = None if payload.class_name is None else model.class_registry.slot_of(payload.class_name)
    page, total = engine.store.list_samples(slot, payload.offset, payload.limit)
    return {
        "samples": [
            {
                "id": info.id,
                "class": slots.get(info.slot),
                "source": info.source,
                "origin": info.origin,
                "ts": round(info.created, 3),
                "image": info.has_image,
            }
            for info in page
        ],
        "total": total,
        "offset": payload.offset,
        "limit": payload.limit,
        "counts": model.samples(),
    }


def _existing(engine: Engine, sample_id: int) -> str:
    name = engine.model.sample_class(sample_id)
    if name is None:
        raise CommandError(f"there is no sample {sample_id}; cmd/samples lists them")
    return name


def delete(engine: Engine, command: Command) -> dict[str, Any]:
    """`sample_delete`: delete one sample."""
    sample_id = command.payload.id
    name = _existing(engine, sample_id)
    engine.store.delete_sample(sample_id)
    engine.model.remove_sample(sample_id)
    engine.samples_changed()
    engine.changes.emit(SampleDeleted(sample_id))
    log.info("sample %d of class %s deleted", sample_id, name)
    engine.status.publish()
    return {"id": sample_id, "class": name, "samples": engine.model.samples()}


def relabel(engine: Engine, command: Command) -> dict[str, Any]:
    """`relabel`: move one sample to another class."""
    sample_id, target = command.payload.id, command.payload.class_name
    slot = engine.model.class_registry.slot_of(target)
    old = _existing(engine, sample_id)
    if old != target:
        engine.store.relabel(sample_id, slot)
        engine.model.relabel_sample(sample_id, target)
        engine.samples_changed()
        engine.changes.emit(SampleRelabelled(sample_id, target))
        log.info("sample %d moved from %s to %s", sample_id, old, target)
        engine.status.publish()
    return {"id": sample_id, "class": target, "from": old, "samples": engine.model.samples()}


def thumbnail(engine: Engine, command: Command) -> dict[str, Any]:
    """`thumbnail`: the stored JPEG of one sample (or of one frame kept for review), base64."""
    payload = command.payload
    if payload.review_id is not None:
        kept = engine.store.review.frame(payload.review_id, engine.model.bottleneck_shape)
        if kept is None or kept[2] is None:
            raise CommandError(f"there is no kept frame {payload.review_id} with an image")
        item, _, jpeg = kept
        image = base64.b64encode(jpeg).decode("ascii")
        return {"review_id": item.id, "class": item.predicted, "image": image}
    sample_id = payload.id
    name = _existing(engine, sample_id)
    jpeg = engine.store.image(sample_id)
    if jpeg is None:
        raise CommandError(
            f"sample {sample_id} has no stored image (state.store_images was false, or it "
            "came from an older version)"
        )
    return {"id": sample_id, "class": name, "image": base64.b64encode(jpeg).decode("ascii")}


def reset(engine: Engine, command: Command) -> dict[str, Any]:
    """`reset`: clear one class's samples, or every sample and the head."""
    model, store = engine.model, engine.store
    class_name = command.payload.class_name
    gone = model.sample_ids(class_name)
    if class_name is None:
        engine.trainer.stop(save=False)
        removed = store.delete_samples(None)
        store.clear_head()
        model.clear()
        engine.trainer.forget_cycle()
        engine.status.loss(None)
        engine.frames.reset()
        engine.metrics_changed()
        log.info("reset: every sample (%d) and the parameters were cleared", removed)
    else:
        removed = store.delete_samples(model.class_registry.slot_of(class_name))
        model.clear(class_name)
        engine.samples_changed()
        log.info("reset: %d sample(s) of class %s cleared", removed, class_name)
    for sample_id in gone:
        engine.changes.emit(SampleDeleted(sample_id))
    engine.status.publish()
    return {"removed": removed, "samples": model.samples()}
