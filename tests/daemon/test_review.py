"""The board asks: frames it was unsure of are kept for review, bounded, merged and labelled
into samples; a near-duplicate sample says so; each class says how varied its samples are."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from personalizer.commands import CommandError
from personalizer.engine import review as review_module
from tests.support import photos
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.engine import engine_rig

PRETRAINED = BundleSpec(
    image_size=160, alpha=1.0, weights="pretrained", num_classes=8, class_names=tuple("ABCDEFGH")
)
TAUGHT = ("cat", "coffee", "rocket")


@pytest.fixture(scope="module")
def pretrained() -> Path:
    return build_bundle(PRETRAINED)


@pytest.fixture
def rig(tmp_path: Path, pretrained: Path):
    rig = engine_rig(tmp_path, pretrained, TAUGHT)
    for name in TAUGHT:
        for index in range(5):
            rig.run("sample", {"class": name, "image": photos.variant(name, index)})
    return rig


def night(image: np.ndarray) -> np.ndarray:
    """A grey, low-contrast, blurred frame: what an IR camera shows at night."""
    grey = ImageOps.grayscale(Image.fromarray(image)).filter(ImageFilter.GaussianBlur(2))
    pixels = np.asarray(grey, dtype=np.float32) * 0.4 + 60
    noisy = pixels + np.random.default_rng(0).normal(0, 8, pixels.shape)
    return np.repeat(np.clip(noisy, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def classify_frame(rig, image: np.ndarray) -> None:
    rig.show(image)
    rig.engine.frames.classify(rig.frames.latest())


def test_an_untaught_object_is_kept_once_merged_and_labelled_into_a_sample(rig, monkeypatch):
    monkeypatch.setattr(review_module, "KEEP_EVERY", 0.0)  # no rate limit in this test
    classify_frame(rig, photos.photo("astronaut"))
    classify_frame(rig, photos.photo("astronaut"))  # the same scene again: seen twice
    listing = rig.run("review", {})
    assert listing["total"] == 1 and rig.engine.status.report().review_pending == 1
    item = listing["items"][0]
    assert item["reason"] == "unknown" and item["class"] == "unknown" and item["seen"] == 2
    assert item["image"] is True
    jpeg = base64.b64decode(rig.run("thumbnail", {"review_id": item["id"]})["image"])
    assert jpeg[:2] == b"\xff\xd8"
    rig.run("class", {"add": "astronaut"})
    made = rig.run("review_label", {"id": item["id"], "class": "astronaut"})
    assert made["count"] == 1 and rig.run("review", {})["total"] == 0
    listed = rig.run("samples", {"class": "astronaut"})["samples"]
    assert listed[0]["source"] == "review" and listed[0]["image"]
    assert rig.events.last("sample").source == "review"
    assert rig.events.last("sample").view.shape == (224, 224, 3)  # Home Assistant's picture
    with pytest.raises(CommandError, match="there is no kept frame"):
        rig.run("review_label", {"id": item["id"], "dismiss": True})


def test_without_stored_images_a_kept_frame_has_no_picture_and_still_becomes_a_sample(
    tmp_path, pretrained, monkeypatch
):
    monkeypatch.setattr(review_module, "KEEP_EVERY", 0.0)
    rig = engine_rig(tmp_path, pretrained, TAUGHT, state={"store_images": False})
    for name in TAUGHT:
        for index in range(5):
            rig.run("sample", {"class": name, "image": photos.variant(name, index)})
    classify_frame(rig, photos.photo("astronaut"))
    item = rig.run("review", {})["items"][0]
    assert item["image"] is False  # `store_images = false` keeps no pictures at all
    assert rig.store.review.frame(item["id"], rig.model.bottleneck_shape)[2] is None
    with pytest.raises(CommandError, match="with an image"):
        rig.run("thumbnail", {"review_id": item["id"]})
    made = rig.run("review_label", {"id": item["id"], "class": "cat"})
    assert made["count"] == 6


def test_a_night_frame_of_a_taught_class_is_kept_and_the_keeping_is_bounded(
    rig, monkeypatch, tmp_path, pretrained
):
    monkeypatch.setattr(review_module, "KEEP_EVERY", 0.0)
    monkeypatch.setattr(review_module, "LIMIT", 3)
    classify_frame(rig, night(photos.photo("cat")))
    kept = rig.run("review", {})["items"]
    assert len(kept) == 1 and kept[0]["reason"] in ("unknown", "unlike its samples")
    for name in ("astronaut", "motorcycle", "galaxies", "retina"):
        classify_frame(rig, photos.photo(name))
    kept = rig.run("review", {})
    assert kept["total"] == 3  # the oldest went
    assert rig.engine.status.report().review_pending == 3
    rig.run("review_label", {"id": kept["items"][0]["id"], "dismiss": True})
    assert rig.run("review", {})["total"] == 2
    rig.store.close()
    again = engine_rig(tmp_path, pretrained, TAUGHT)
    assert again.run("review", {})["total"] == 2  # kept across a restart
    assert again.engine.status.report().review_pending == 2


def test_a_scene_that_stays_unknown_does_not_flood_the_review(rig):
    for _ in range(5):
        classify_frame(rig, photos.photo("motorcycle"))
        classify_frame(rig, photos.photo("galaxies"))
    assert rig.run("review", {})["total"] == 1  # one per KEEP_EVERY for the reason


def test_a_board_taught_nothing_keeps_no_frame(tmp_path, pretrained, monkeypatch):
    monkeypatch.setattr(review_module, "KEEP_EVERY", 0.0)
    fresh = engine_rig(tmp_path, pretrained, TAUGHT)
    classify_frame(fresh, photos.photo("astronaut"))
    assert fresh.run("review", {})["total"] == 0  # every frame is unknown: nothing to ask


def test_a_confident_known_frame_is_not_kept(rig):
    classify_frame(rig, photos.variant("rocket", 7))
    assert rig.run("review", {})["total"] == 0


def test_a_near_duplicate_sample_says_so_and_each_class_says_how_varied_it_is(rig):
    still = photos.variant("coffee", 20)
    rig.run("sample", {"class": "coffee", "image": still})
    again = rig.run("sample", {"class": "coffee", "image": still})
    assert again["hint"].startswith(f"very like sample #{again['similar_to']}")
    assert rig.events.last("sample").hint == again["hint"]
    variety = rig.engine.status.report().variety
    assert variety["cat"]["say"] == "varied", variety
    rig.run("class", {"add": "mug"})
    for _ in range(3):
        rig.run("sample", {"class": "mug", "image": still})
    assert rig.engine.status.report().variety["mug"]["say"] == "near-identical shots"


def test_variety_taken_while_the_samples_change_is_measured_again(rig, monkeypatch):
    # Another thread adds a sample while the variety is measured: the next call must not keep
    # the figures of the samples as they were.
    model = rig.model
    model.add_sample(photos.variant("cat", 29), "cat")  # the next variety() measures
    pooled = model._samples.pooled
    real = pooled.variety
    added: list[int] = []

    def meanwhile(ids):
        if not added:
            added.append(model.add_sample(photos.variant("cat", 30), "cat"))
        return real(ids)

    monkeypatch.setattr(pooled, "variety", meanwhile)
    model.variety()
    monkeypatch.setattr(pooled, "variety", real)
    counted: list[int] = []
    monkeypatch.setattr(pooled, "variety", lambda ids: counted.append(1) or real(ids))
    model.variety()
    assert counted, "the figures from before the new sample were kept"
