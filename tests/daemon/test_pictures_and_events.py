"""What the engine tells Home Assistant besides the sensors, in this process: a class change
(with the class before and the model's view, and nothing extra on other frames), the view of a
sample, the bounded pictures made of them, and a status that follows the training loss."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from personalizer.events import PredictionEvent
from personalizer.model.region import Region
from personalizer.mqtt.payloads import (
    PICTURE_MAX_BYTES,
    PICTURE_SIDE,
    class_change_payload,
    picture_payload,
)
from tests.support import photos
from tests.support.engine import engine_rig

EVERY_FRAME = {"agree_frames": 1, "min_confidence": 0.0, "publish_interval": 0.0}


@pytest.fixture
def rig(tmp_path: Path, bundle: Path):
    return engine_rig(tmp_path, bundle, inference=EVERY_FRAME)


def decoded(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as image:
        return np.asarray(image.convert("RGB"))


def test_a_class_change_carries_the_class_before_and_the_view_other_frames_nothing(rig):
    frame = rig.frames.put(photos.photo("cat"))
    first = rig.engine.frames.classify(frame)
    assert first.class_name == "unknown" and first.changed and first.previous is None
    assert first.view.shape == (224, 224, 3) and not first.view.flags.writeable
    assert np.array_equal(first.view, rig.model.crop(frame.image, 224))
    same = rig.engine.frames.classify(frame)
    assert (same.changed, same.previous, same.view) == (False, None, None)
    rig.run("sample", {"class": "cat", "image": photos.photo("cat")})
    rig.run("sample", {"class": "coffee", "image": photos.photo("coffee")})
    cat = rig.engine.frames.classify(frame)
    assert (cat.class_name, cat.changed, cat.previous) == ("cat", True, "unknown")
    assert [e.changed for e in rig.events.of("prediction")] == [True, False, True]


def test_with_a_region_the_view_is_the_square_of_that_region(rig):
    rig.engine.frames.region = Region.parse([0.5, 0.0, 0.5, 1.0])  # the right half
    frame = rig.frames.put(photos.photo("cat"))
    event = rig.engine.frames.classify(frame)
    right_half = rig.engine.frames.view(frame.image)
    assert np.array_equal(event.view, rig.model.crop(right_half, 224))
    assert not np.array_equal(event.view, rig.model.crop(frame.image, 224))


def test_a_sample_event_carries_the_view_the_model_embedded(rig):
    sample_id = rig.run("sample", {"class": "rocket", "image": photos.photo("rocket")})["sample_id"]
    event = rig.events.last("sample")
    assert event.view.shape == (224, 224, 3)
    assert np.array_equal(event.view, rig.model.crop(photos.photo("rocket"), 224))
    # The stored thumbnail is made of the same view.
    stored = decoded(rig.store.image(sample_id))
    assert np.abs(stored.astype(int) - event.view.astype(int)).mean() < 4


def test_the_class_change_payload_names_both_classes():
    event = PredictionEvent(
        "unknown", 0.0, {"cat": 0.2}, 1795612731.25, 42, known=False, changed=True, previous="cat"
    )
    assert json.loads(class_change_payload(event)) == {
        "class": "unknown",
        "previous": "cat",
        "known": False,
        "confidence": 0.0,
        "ts": 1795612731.25,
        "frame": 42,
    }


@pytest.mark.parametrize("side", [224, 640])
def test_pictures_are_small_jpegs_of_the_view_whatever_it_shows(side):
    photo = np.asarray(Image.fromarray(photos.photo("coffee")).resize((side, side)))
    noise = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    for view in (photo, noise):
        jpeg = picture_payload(view)
        assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= PICTURE_MAX_BYTES
        assert decoded(jpeg).shape == (PICTURE_SIDE, PICTURE_SIDE, 3)
    # A photo keeps the quality asked for: it looks like the view, scaled.
    scaled = np.asarray(Image.fromarray(photo).resize((PICTURE_SIDE, PICTURE_SIDE)))
    assert np.abs(decoded(picture_payload(photo)).astype(int) - scaled.astype(int)).mean() < 6


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
