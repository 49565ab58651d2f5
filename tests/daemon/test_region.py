"""A region of the frame: a small object at the edge of a wide, busy view is learnt with a
region, where the whole frame (the centre square the model sees without one) is at chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from personalizer.commands import CommandError
from personalizer.model.region import Region
from tests.support import photos
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.engine import engine_rig

PRETRAINED = BundleSpec(
    image_size=160, alpha=1.0, weights="pretrained", num_classes=8, class_names=tuple("ABCDEFGH")
)
OBJECTS = ("cat", "coffee")
BACKGROUNDS = ("astronaut", "galaxies", "motorcycle", "retina", "tissue", "rocket")
WIDTH, HEIGHT = 640, 360  # 16:9; the centre square spans x 140..500
REGION = [0.78, 0.2, 0.22, 0.6]  # the right edge, where the object is


@pytest.fixture(scope="module")
def pretrained() -> Path:
    return build_bundle(PRETRAINED)


def scene(name: str, background: str, index: int) -> np.ndarray:
    """A 640x360 frame of a busy photo with the object ``name`` small at the right edge."""
    rng = np.random.default_rng(index * 31 + len(name) * 7 + len(background))
    with Image.open(photos.photo_path(background)) as picture:
        picture = picture.convert("RGB")
        scale = max(WIDTH / picture.width, HEIGHT / picture.height) * rng.uniform(1.0, 1.3)
        picture = picture.resize((int(picture.width * scale) + 1, int(picture.height * scale) + 1))
        left = int(rng.uniform(0, picture.width - WIDTH))
        top = int(rng.uniform(0, picture.height - HEIGHT))
        frame = picture.crop((left, top, left + WIDTH, top + HEIGHT))
    side = int(rng.uniform(90, 110))
    thing = Image.fromarray(photos.variant(name, index, side))
    x = int(WIDTH * 0.8 + rng.uniform(0, WIDTH * 0.2 - side - 2))
    y = int(HEIGHT * 0.25 + rng.uniform(0, HEIGHT * 0.5 - side))
    frame.paste(thing, (x, y))
    return np.asarray(frame, dtype=np.uint8)


def accuracy(rig, frames: list[tuple[str, np.ndarray]]) -> float:
    right = 0
    for name, frame in frames:
        right += rig.model.predict(rig.engine.frames.view(frame))[0].class_name == name
    return right / len(frames)


def teach_and_test(rig) -> float:
    for index in range(5):
        for name in OBJECTS:
            rig.show(scene(name, BACKGROUNDS[index % 3], index))
            rig.run("sample", {"class": name})
    rig.engine.trainer.start()
    for _ in range(30):
        rig.engine.trainer.run_epoch()
    rig.engine.trainer.stop(save=False)
    held_out = [
        (name, scene(name, background, 100 + index))
        for index in range(8)
        for name in OBJECTS
        for background in BACKGROUNDS[3:5]
    ]
    return accuracy(rig, held_out)


def test_a_small_object_at_the_edge_is_learnt_with_a_region_and_not_without(
    tmp_path: Path, pretrained: Path
) -> None:
    with_region = engine_rig(tmp_path / "region", pretrained, OBJECTS)
    assert with_region.run("region", {"region": REGION})["region"] == REGION
    without = engine_rig(tmp_path / "whole", pretrained, OBJECTS)
    seen, unseen = teach_and_test(with_region), teach_and_test(without)
    print(f"held-out accuracy: with the region {seen:.2f}, the whole frame {unseen:.2f}")
    assert seen >= 0.9
    assert unseen <= 0.7  # two classes: chance is 0.5


def test_the_region_is_padded_to_a_square_and_kept_in_the_state(
    tmp_path: Path, bundle: Path
) -> None:
    region = Region.parse([0.5, 0.0, 0.5, 0.25])
    frame = np.full((100, 200, 3), 200, dtype=np.uint8)
    square = region.apply(frame)
    assert square.shape == (100, 100, 3)  # 100 wide, 25 high: black above and below
    assert (square[:37] == 0).all() and (square[38:62] == 200).all() and (square[63:] == 0).all()
    rig = engine_rig(tmp_path, bundle, camera={"region": [0.1, 0.1, 0.5, 0.5]})
    assert rig.engine.status.report().region == [0.1, 0.1, 0.5, 0.5]  # the config seeds it
    rig.run("region", {"region": [0.2, 0.2, 0.4, 0.3]})
    rig.store.close()
    again = engine_rig(tmp_path, bundle, camera={"region": [0.1, 0.1, 0.5, 0.5]})
    assert again.engine.status.report().region == [0.2, 0.2, 0.4, 0.3]  # the state wins
    again.run("region", {"region": None})
    assert again.engine.status.report().region is None
    for bad, why in (
        ([0.5, 0.5, 0.6, 0.2], "inside the frame"),
        ([0.1, 0.1, 0.001, 0.5], "at least"),
        ([1, 2, 3], "four numbers"),
        ("all", "null"),
    ):
        with pytest.raises(CommandError, match=why):
            again.run("region", {"region": bad})
