"""What the engine tells Home Assistant besides the sensors, in this process: a status that
follows the training loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import photos
from tests.support.engine import engine_rig

EVERY_FRAME = {"agree_frames": 1, "min_confidence": 0.0, "publish_interval": 0.0}


@pytest.fixture
def rig(tmp_path: Path, bundle: Path):
    return engine_rig(tmp_path, bundle, inference=EVERY_FRAME)


def test_the_status_follows_the_loss_at_most_every_loss_interval(rig):
    for name in ("cat", "coffee"):
        for i in range(2):
            rig.run("sample", {"class": name, "image": photos.variant(name, i)})
    trainer, status = rig.engine.trainer, rig.engine.status
    rig.run("train", {"action": "start"})

    def reports() -> list:
        return rig.events.of("status")

    status.loss_interval = 3600.0  # epochs now come faster than that: no report between
    before = len(reports())
    for _ in range(3):
        trainer.run_epoch()
    assert len(reports()) == before and reports()[-1].last_loss is None
    status.loss_interval = 0.0  # every epoch is due: each one's loss is reported
    for _ in range(3):
        trainer.run_epoch()
    losses = [event.loss for event in rig.events.of("loss")]
    assert [report.last_loss for report in reports()[before:]] == losses[3:]
    status.loss_interval = 3600.0
    trainer.run_epoch()
    rig.run("train", {"action": "stop"})  # the report that ends training has the last loss
    assert reports()[-1].state == "idle"
    assert reports()[-1].last_loss == rig.events.last("loss").loss
