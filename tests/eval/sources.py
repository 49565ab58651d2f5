"""Where the evaluation's photos come from: four sources installed from package registries.

No photo is downloaded at run time. Each source is a list of *objects*; an object is one thing a
maker could teach (a photo of it, or a cut-out of it on a table), and shots.py makes its shots.

| source | registry, package | objects | used for |
|---|---|---|---|
| ``skimage`` | PyPI ``scikit-image`` (skimage/data) | 8 colour photos | choosing parameters |
| ``opencv`` | Debian ``opencv-doc`` (examples/data) | 18 colour photos | choosing parameters |
| ``tuxpaint`` | Debian ``tuxpaint-stamps-default`` | 22 cut-outs on a table | evaluation only |
| ``wallpapers`` | Debian ``mate-backgrounds`` (nature) | 11 nature close-ups | evaluation only |

The two evaluation-only sources were never looked at while the method's parameters were chosen
(open_set.py says which figures chose them). ``tuxpaint`` is the hardest: every object sits on
the same wooden table (``mate-backgrounds``' Wood.jpg), as in front of a fixed camera, so most of
each frame is the same for every class; ``wallpapers`` is fine-grained (three orange flowers,
three close-ups of green leaves or grass).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")
TABLE = MATE_BACKGROUNDS / "nature" / "Wood.jpg"

SKIMAGE_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "retina.jpg", "hubble_deep_field.jpg", "ihc.png",
)  # fmt: skip
# The colour photos of OpenCV's samples (drawings, renderings, grey and stereo pairs left out).
OPENCV_PHOTOS = (
    "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg", "building.jpg",
    "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg",
    "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg", "orange.jpg", "squirrel_cls.jpg",
    "stuff.jpg",
)  # fmt: skip
# Photo cut-outs (cartoons left out), one per kind of thing so no two objects are the same.
TUXPAINT_OBJECTS = (
    "animals/birds/magellanic_penguin.png", "animals/birds/pink_flamingo.png",
    "animals/birds/peacock.png", "animals/fish/lobster.png", "animals/insects/bee.png",
    "animals/mammals/apes/chimp.png", "animals/mammals/bovines/sheep.png",
    "animals/mammals/cats/tiger_sumatran.png", "animals/mammals/equines/zebra.png",
    "animals/mammals/hedgehog.png", "animals/marsupials/koala.png", "food/fruit/kiwi.png",
    "food/fruit/Strawberry2.png", "food/pizza.png", "hobbies/music/brass/trumpet.png",
    "hobbies/music/string/guitar_classical.png", "household/Lightbulb.png",
    "household/tools/toolbox.png", "medical/stethoscope.png", "vehicles/auto/sportscar2.png",
    "vehicles/emergency/firetruck.png", "clothes/hats/sombrero.png",
)  # fmt: skip
WALLPAPERS = (
    "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
    "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "YellowFlower.jpg",
)  # fmt: skip

# Large photos are shrunk once on loading: shots never need more than this many pixels.
MAX_SIDE = 1024


@dataclass(frozen=True)
class PhotoObject:
    """One teachable object: a photo (``cutout`` False) or a cut-out to put on the table."""

    source: str
    name: str
    path: Path
    cutout: bool = False

    @property
    def key(self) -> str:
        """``source/name``: unique across sources."""
        return f"{self.source}/{self.name}"


@dataclass(frozen=True)
class Source:
    """A photo source: its objects, the package that installs it, and whether it tunes."""

    name: str
    package: str  # how to install it, for the error message
    tuning: bool  # True: its figures chose parameters; False: evaluation only
    objects: Callable[[], list[PhotoObject]]


def _skimage_folder() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise MissingSource("scikit-image is not installed (pip install scikit-image)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class MissingSource(RuntimeError):
    """A photo source's package is not installed."""


def _files(source: str, folder: Path, names: tuple[str, ...], cutout: bool = False):
    objects = []
    for name in names:
        path = folder / name
        if not path.is_file():
            how = SOURCES_BY_NAME[source].package
            raise MissingSource(f"{path} is missing: install the {source} photos ({how})")
        objects.append(PhotoObject(source, Path(name).stem, path, cutout))
    return objects


SOURCES = (
    Source(
        "skimage",
        "pip install scikit-image",
        True,
        lambda: _files("skimage", _skimage_folder(), SKIMAGE_PHOTOS),
    ),
    Source(
        "opencv",
        "apt-get install opencv-doc",
        True,
        lambda: _files("opencv", OPENCV_DATA, OPENCV_PHOTOS),
    ),
    Source(
        "tuxpaint",
        "apt-get install tuxpaint-stamps-default mate-backgrounds",
        False,
        lambda: _files("tuxpaint", TUXPAINT_STAMPS, TUXPAINT_OBJECTS, cutout=True),
    ),
    Source(
        "wallpapers",
        "apt-get install mate-backgrounds",
        False,
        lambda: _files("wallpapers", MATE_BACKGROUNDS / "nature", WALLPAPERS),
    ),
)
SOURCES_BY_NAME = {source.name: source for source in SOURCES}


@cache
def load(path: Path, rgba: bool = False) -> Image.Image:
    """The image at ``path`` (RGB, or RGBA for cut-outs), at most MAX_SIDE pixels on a side."""
    with Image.open(path) as image:
        image = image.convert("RGBA" if rgba else "RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        image.load()
        return image


def table() -> Image.Image:
    """The wooden table the cut-outs stand on."""
    if not TABLE.is_file():
        raise MissingSource(f"{TABLE} is missing: apt-get install mate-backgrounds")
    return load(TABLE)


def as_array(image: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
