"""Real photos for replay cameras, from scikit-image's bundled sample images.

scikit-image ships its classic sample photos inside the wheel (skimage/data/*.png|jpg); they are
read here as plain files, without importing scikit-image itself.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

# Distinct colour photos: the demo's and the tests' "objects".
PHOTOS = {
    "astronaut": "astronaut.png",
    "cat": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "retina": "retina.jpg",
    "galaxies": "hubble_deep_field.jpg",
    "tissue": "ihc.png",
}


def data_folder() -> Path:
    """skimage/data inside the installed scikit-image; a clear error when it is missing."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "scikit-image is not installed in this environment; `make` installs it into the "
            "board venv (pip install scikit-image)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def photo_path(name: str) -> Path:
    """The file of the photo `name` (a key of PHOTOS)."""
    path = data_folder() / PHOTOS[name]
    if not path.is_file():
        raise RuntimeError(f"scikit-image's sample image {path} is missing")
    return path


def photo(name: str, size: int | None = None) -> np.ndarray:
    """The photo `name` as HxWx3 uint8 RGB, optionally resized to a `size` x `size` square."""
    with Image.open(photo_path(name)) as image:
        image = image.convert("RGB")
        if size is not None:
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def variant(name: str, index: int, size: int = 256) -> np.ndarray:
    """A slightly different shot of photo `name` (shifted crop, zoom, brightness): a "sample"."""
    rng = np.random.default_rng(index * 7919 + len(name))
    with Image.open(photo_path(name)) as image:
        image = image.convert("RGB")
        width, height = image.size
        side = min(width, height)
        crop = int(side * rng.uniform(0.75, 0.95))
        left = int(rng.uniform(0, width - crop))
        top = int(rng.uniform(0, height - crop))
        image = image.crop((left, top, left + crop, top + crop)).resize((size, size))
        if index % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(image, dtype=np.float32) * rng.uniform(0.85, 1.15)
    return np.clip(array, 0, 255).astype(np.uint8)


def encode(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    """JPEG (or PNG) bytes of an RGB array."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format=fmt, quality=92)
    return buffer.getvalue()


def replay_folder(target: Path, names: list[str], copies: int = 1) -> Path:
    """A replay folder showing each photo `copies` frames in a row, in the order of `names`."""
    target.mkdir(parents=True, exist_ok=True)
    for position, name in enumerate(names):
        source = photo_path(name)
        for copy in range(copies):
            shutil.copyfile(source, target / f"{position:03d}-{copy:03d}-{name}{source.suffix}")
    return target


def photo_b64(name: str, index: int | None = None) -> str:
    """Base64 of photo `name` (PNG), or of its `index`-th variant (JPEG), for MQTT commands."""
    import base64

    image = photo(name) if index is None else variant(name, index)
    return base64.b64encode(encode(image, "PNG" if index is None else "JPEG")).decode("ascii")
