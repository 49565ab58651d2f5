"""Embedding the stored samples again when the bundle changed (another base, another shape).

Every sample's stored JPEG (the model-input crop) goes through the new base; the new bottlenecks
replace the old ones in batches, with the progress in the log and the status. The head belonged
to the old base's features, so it is cleared. Without an image for every sample that is
impossible, and the caller sets the state aside instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import StateFileError
from ..images import ImageDecodeError, decode_image
from .sqlite_file import StateDatabase

log = logging.getLogger(__name__)

REEMBED_BATCH = 32
MAX_CROP_PIXELS = 4096 * 4096


def samples_without_image(db: StateDatabase) -> int:
    """How many samples have no stored image (and so cannot be embedded again)."""
    return sum(1 for _, image, _ in db.samples.images() if image is None)


def reembed(
    db: StateDatabase,
    bundle_id: str,
    embed: Callable[[np.ndarray], np.ndarray],
    progress: Callable[[str | None], None],
    damaged: Callable[[dict[int, str]], Any],
) -> str:
    """Embed every sample of ``db`` again with ``embed`` (image -> bottleneck) of the bundle
    ``bundle_id``; returns what to tell about it. A row whose checksum fails goes to
    ``damaged`` (id -> why) instead."""
    total = sum(db.samples.counts().values())
    old = db.meta("samples_bundle")
    log.info("the bundle changed (%s -> %s): embedding %d sample(s) again", old, bundle_id, total)
    began = time.monotonic()
    done = 0
    batch: dict[int, np.ndarray] = {}
    bad: dict[int, str] = {}
    for sample_id, image, why in db.samples.images():
        if why is not None or image is None:
            bad[sample_id] = why or "it has no stored image"
            continue
        try:
            pixels = decode_image(image, MAX_CROP_PIXELS)
        except ImageDecodeError as exc:
            raise StateFileError(
                f"{db.path}: the image of sample {sample_id} is damaged ({exc})"
            ) from exc
        batch[sample_id] = embed(pixels)
        done += 1
        if len(batch) >= REEMBED_BATCH:
            db.samples.replace_bottlenecks(batch)
            batch = {}
            text = f"embedding the samples again for the new bundle: {done}/{total}"
            log.info("%s", text)
            progress(text)
    if batch:
        db.samples.replace_bottlenecks(batch)
    if bad:
        damaged(bad)
    db.head.clear()  # the head belonged to the other base's features
    db.review.clear()  # so did the kept frames' bottlenecks
    progress(None)
    message = (
        f"the bundle changed ({old} -> {bundle_id}): embedded {done} sample(s) again from "
        f"their stored images in {time.monotonic() - began:.1f} s; the head starts from them"
    )
    log.warning("%s", message)
    return message
