"""The command about what the model looks at: ``region`` (a part of the frame, or all of it)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...model.region import Region

if TYPE_CHECKING:
    from ...commands import Command
    from ..engine import Engine

log = logging.getLogger(__name__)


def region(engine: Engine, command: Command) -> dict[str, Any]:
    """`region`: the model looks at ``region`` of the frame from now on (null: all of it)."""
    values = command.payload.region
    chosen = Region.parse(values) if values else None
    engine.set_region(chosen)
    log.info("region: %s", "the whole frame" if chosen is None else chosen.as_list())
    engine.status.publish()
    return {"region": None if chosen is None else chosen.as_list()}
