"""The commands about frames kept for review: list them, label or dismiss one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...commands import CommandError
from ...images import ImageDecodeError, decode_image

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine

log = logging.getLogger(__name__)


def listing(engine: Engine, command: Command) -> dict[str, Any]:
    """`review`: a page of the kept frames, newest first."""
    items, total = engine.store.review.page(command.payload.offset, command.payload.limit)
    return {"items": [item.as_dict() for item in items], "total": total}


def label(engine: Engine, command: Command) -> dict[str, Any]:
    """`review_label`: a kept frame becomes a sample of a class (its stored bottleneck and
    crop, no base model needed), or is dismissed."""
    payload = command.payload
    if payload.dismiss:
        if not engine.review.forget(payload.id):
            raise CommandError(_missing(payload.id))
        return {"id": payload.id, "dismissed": True}
    engine.model.class_registry.slot_of(payload.class_name)  # unknown: refused, nothing changes
    kept = engine.store.review.frame(payload.id, engine.model.bottleneck_shape)
    if kept is None:
        raise CommandError(_missing(payload.id))
    item, bottleneck, jpeg = kept
    result = engine.add_sample(payload.class_name, bottleneck, jpeg, "review", view=_view(jpeg))
    engine.review.forget(payload.id)
    log.info("kept frame %d (%s) is now a sample of %s", item.id, item.reason, payload.class_name)
    return {"id": payload.id, **result}


def _view(jpeg: bytes | None) -> Any:
    """The kept crop as the picture of the new sample (None when it has none or is unreadable:
    the sample is taken all the same, without a picture)."""
    if jpeg is None:
        return None
    try:
        view = decode_image(jpeg, max_pixels=1024 * 1024)
    except ImageDecodeError as exc:
        log.warning("the kept frame's picture could not be read (%s); no picture is sent", exc)
        return None
    view.setflags(write=False)
    return view


def _missing(review_id: int) -> str:
    return f"there is no kept frame {review_id}; cmd/review lists them"
