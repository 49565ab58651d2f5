"""A representative data set for full-integer quantization, read from a folder of images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tfltransfer.errors import QuantizationError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Centre-square crop, resize, RGB float32 in [0, 1], shape ``(1, H, W, 3)``."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize(
            (size[1], size[0]), Image.BILINEAR
        )
        return (np.asarray(image, np.float32) / 255.0)[np.newaxis]


def from_folder(
    folder: str | Path, size: tuple[int, int], limit: int = 200
) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A ``representative_dataset`` function over up to ``limit`` images of ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise QuantizationError(f"--representative_images {folder}: no such directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise QuantizationError(
            f"--representative_images {folder}: no .jpg/.png images found; give 50-200 photos "
            "like the ones the camera will see"
        )

    def generate() -> Iterator[list[np.ndarray]]:
        for path in files:
            yield [load_image(path, size)]

    return generate
