"""Shots of an object as a camera on a board would take them, and the camera's bad days.

- :func:`varied`: what "take 5 shots from different angles and light" gives: another part and
  zoom of the photo (or another place, size and turn of the object on the table), a small
  rotation, a mirror image, another brightness, white balance and gamma.
- :func:`still`: a still object in front of a fixed camera: the same framing every time, with a
  pixel or two of jitter, a percent of brightness and a little sensor noise.
- :data:`CONDITIONS`: what may happen to a frame after the samples were taken: darker or brighter
  light, a grey night-vision (IR) frame, blur, sensor noise, JPEG quality 30, a small shift,
  a small rotation.

Every shot is a pure function of the object and its index (seeded), so the cached bottlenecks
(embeddings.py) stay valid until :data:`VERSION` changes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from tests.eval.sources import PhotoObject, load, table

SIZE = 256  # shots are this many pixels square; the model crops and scales them as a frame
# Bump when a change here changes any shot: the cached bottlenecks (embeddings.py) depend on it.
VERSION = 1


def _rng(obj: PhotoObject, kind: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{obj.key}/{kind}/{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def varied(obj: PhotoObject, index: int) -> np.ndarray:
    """Shot ``index`` of ``obj`` from another angle, distance and light (HxWx3 uint8)."""
    rng = _rng(obj, "varied", index)
    angle = rng.uniform(-15, 15)
    if obj.cutout:
        frame = _on_table(obj, rng.uniform(0.45, 0.8), angle, rng)
    else:
        frame = _view(load(obj.path), rng.uniform(0.45, 0.7), angle, rng)
    if rng.random() < 0.5:
        frame = frame.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _light(
        np.asarray(frame, dtype=np.float32),
        brightness=rng.uniform(0.65, 1.35),
        gains=rng.uniform(0.92, 1.08, size=3),
        gamma=rng.uniform(0.85, 1.15),
    )


def still(obj: PhotoObject, index: int) -> np.ndarray:
    """Shot ``index`` of ``obj`` held still in front of a fixed camera (HxWx3 uint8)."""
    rng = _rng(obj, "still", index)
    jitter = rng.uniform(-0.01, 0.01, size=2)
    if obj.cutout:
        frame = _on_table(obj, 0.65, 0.0, rng, centre=(0.5 + jitter[0], 0.5 + jitter[1]))
    else:
        frame = _view(load(obj.path), 0.7, 0.0, rng, centre=(0.5 + jitter[0], 0.5 + jitter[1]))
    x = _light(np.asarray(frame, dtype=np.float32), brightness=rng.uniform(0.98, 1.02))
    noise = rng.normal(0.0, 1.5, size=x.shape)
    return np.clip(x + noise, 0, 255).astype(np.uint8)


def _view(
    photo: Image.Image,
    side: float,
    angle: float,
    rng: np.random.Generator,
    centre: tuple[float, float] | None = None,
) -> Image.Image:
    """A square of ``side`` x the photo's short side, turned by ``angle`` degrees, at a random
    (or the given, as shares of the free room) position."""
    width, height = photo.size
    crop = side * min(width, height)
    # Cut a larger square first so that turning it leaves no black corners in the middle part.
    outer = min(crop * 1.42, min(width, height))
    cx, cy = centre if centre is not None else rng.uniform(0, 1, size=2)
    left = cx * (width - outer)
    top = cy * (height - outer)
    square = photo.crop((int(left), int(top), int(left + outer), int(top + outer)))
    if angle:
        square = square.rotate(angle, resample=Image.Resampling.BICUBIC)
    margin = (outer - crop) / 2
    square = square.crop((int(margin), int(margin), int(margin + crop), int(margin + crop)))
    return square.resize((SIZE, SIZE), Image.Resampling.BILINEAR)


def _on_table(
    obj: PhotoObject,
    scale: float,
    angle: float,
    rng: np.random.Generator,
    centre: tuple[float, float] | None = None,
) -> Image.Image:
    """The cut-out standing on the table, its long side ``scale`` x the frame."""
    background = _table_view()
    stamp = load(obj.path, rgba=True)
    factor = scale * SIZE / max(stamp.size)
    stamp = stamp.resize(
        (max(1, round(stamp.width * factor)), max(1, round(stamp.height * factor))),
        Image.Resampling.BICUBIC,
    )
    if angle:
        stamp = stamp.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    cx, cy = centre if centre is not None else rng.uniform(0, 1, size=2)
    left = int(cx * max(0, SIZE - stamp.width))
    top = int(cy * max(0, SIZE - stamp.height))
    background.paste(stamp, (left, top), stamp)
    return background


def _table_view() -> Image.Image:
    """The fixed camera's view of the table (the same part of it in every shot)."""
    wood = table()
    side = int(min(wood.size) * 0.8)
    return wood.crop((0, 0, side, side)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)


def _light(
    x: np.ndarray,
    brightness: float = 1.0,
    gains: np.ndarray | None = None,
    gamma: float = 1.0,
) -> np.ndarray:
    y = (x / 255.0) ** gamma * brightness
    if gains is not None:
        y = y * gains
    return np.clip(y * 255.0, 0, 255).astype(np.uint8)


# --- camera conditions ----------------------------------------------------------------------


def darker(x: np.ndarray) -> np.ndarray:
    """A third of the light, with the noise a camera adds when it lifts a dark frame."""
    rng = np.random.default_rng(int(x[::17, ::13].sum()))
    y = x.astype(np.float32) * 0.35 + rng.normal(0.0, 3.0, size=x.shape)
    return np.clip(y, 0, 255).astype(np.uint8)


def brighter(x: np.ndarray) -> np.ndarray:
    """Over-exposed: 1.7x the light, highlights clipped."""
    return np.clip(x.astype(np.float32) * 1.7, 0, 255).astype(np.uint8)


def night_vision(x: np.ndarray) -> np.ndarray:
    """A grey IR frame: no colour, low contrast, grainy."""
    rng = np.random.default_rng(int(x[::17, ::13].sum()) + 1)
    grey = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = 0.5 * (grey - grey.mean()) + 110.0 + rng.normal(0.0, 6.0, size=grey.shape)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def blurred(x: np.ndarray) -> np.ndarray:
    """Out of focus (Gaussian blur, radius 2.5 px of 256)."""
    return np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(2.5)))


def noisy(x: np.ndarray) -> np.ndarray:
    """Sensor noise, sigma 15 of 255."""
    rng = np.random.default_rng(int(x[::17, ::13].sum()) + 2)
    return np.clip(x.astype(np.float32) + rng.normal(0.0, 15.0, size=x.shape), 0, 255).astype(
        np.uint8
    )


def jpeg30(x: np.ndarray) -> np.ndarray:
    """Saved as JPEG quality 30 (a stream at a low bit rate)."""
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, format="JPEG", quality=30)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def shifted(x: np.ndarray) -> np.ndarray:
    """The camera moved: the frame shifted by a tenth (the part that left is lost)."""
    image = Image.fromarray(x)
    cut = int(SIZE * 0.1)
    return np.asarray(image.crop((cut, cut, SIZE, SIZE)).resize((SIZE, SIZE)))


def rotated(x: np.ndarray) -> np.ndarray:
    """The camera turned by 10 degrees (the corners it lost cropped away)."""
    image = Image.fromarray(x).rotate(10, resample=Image.Resampling.BICUBIC)
    cut = int(SIZE * 0.12)
    return np.asarray(image.crop((cut, cut, SIZE - cut, SIZE - cut)).resize((SIZE, SIZE)))


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "darker": darker,
    "brighter": brighter,
    "night IR": night_vision,
    "blur": blurred,
    "noise": noisy,
    "JPEG 30": jpeg30,
    "shift": shifted,
    "rotate": rotated,
}
