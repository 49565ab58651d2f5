"""Importing the state file of version 1.0 (``state.npz``) into the state database.

Version 1.0 kept everything in one ``.npz`` (no pickles), rewritten on every sample. It is read
here once, at the first start of a newer version, with the same checks as before, and its
classes, samples (ids kept) and head go into ``state.db`` in one transaction. It holds no
images, so those samples cannot be embedded again for another bundle.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StateFileError
from ..model.head_state import HeadState
from .sqlite_file import StateDatabase

FORMAT_TAG = "personalizer-state"
LEGACY_STATE = "state.npz"
_META = "meta.npy"
log = logging.getLogger(__name__)


def _array(archive: zipfile.ZipFile, path: Path, name: str, dtype: Any) -> np.ndarray:
    try:
        with archive.open(name) as entry:
            array = np.lib.format.read_array(entry, allow_pickle=False)
    except KeyError:
        raise StateFileError(f"{path} is incomplete: entry {name} is missing") from None
    except ValueError as err:
        raise StateFileError(f"{path}: entry {name} is not a plain array ({err})") from err
    if array.dtype != np.dtype(dtype):
        raise StateFileError(f"{path}: entry {name} is {array.dtype}, expected {np.dtype(dtype)}")
    return array


def _meta(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    raw = _array(archive, path, _META, np.uint8)
    try:
        meta = json.loads(raw.tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StateFileError(f"{path}: meta.npy is not JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        raise StateFileError(f"{path} is not a personalizer state file")
    if meta.get("format_version") != 1:
        raise StateFileError(f"{path} has state format {meta.get('format_version')!r}, not 1")
    for key in ("num_parameters", "num_optimizer_state", "steps", "epochs", "next_sample_id"):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int):
            raise StateFileError(f"{path}: meta field {key!r} is {meta.get(key)!r}")
    return meta


def import_npz(path: Path, db: StateDatabase, model: Any) -> int:
    """Import ``path`` into the (new, empty) ``db`` for ``model``; returns the sample count.

    Raises:
        StateFileError: the file is damaged, or was made for another bundle or bottleneck.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            meta = _meta(archive, path)
            if meta.get("bundle_id") != model.bundle_id:
                raise StateFileError(
                    f"it was made for bundle {meta.get('bundle_id')}, the daemon runs "
                    f"{model.bundle_id}, and it holds no images to embed the samples again"
                )
            shape = tuple(meta.get("bottleneck_shape", []))
            if shape != tuple(model.bottleneck_shape):
                raise StateFileError(f"its bottlenecks have the shape {list(shape)}")
            params = tuple(
                _array(archive, path, f"param_{i}.npy", np.float32)
                for i in range(meta["num_parameters"])
            )
            state = tuple(
                _array(archive, path, f"optimizer_state_{j}.npy", np.float32)
                for j in range(meta["num_optimizer_state"])
            )
            ids = _array(archive, path, "sample_ids.npy", np.int64)
            labels = _array(archive, path, "sample_labels.npy", np.int32)
            bottlenecks = _array(archive, path, "sample_bottlenecks.npy", np.float32)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise StateFileError(f"{path} is truncated or corrupt ({err})") from err
    classes = list(meta.get("classes", []))
    n = len(ids)
    if labels.shape != (n,) or bottlenecks.shape != (n, *shape):
        raise StateFileError(f"{path} is inconsistent: {n} ids, labels {list(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= len(classes)):
        raise StateFileError(f"{path}: a sample label is outside its {len(classes)} classes")
    if len(classes) > model.capacity:
        raise StateFileError(f"it has {len(classes)} classes, the bundle {model.capacity} slots")
    db.classes.replace(dict(enumerate(classes)))
    rows = [
        (int(i), int(label), b, "import", 0.0, None)
        for i, label, b in zip(ids, labels, bottlenecks, strict=True)
    ]
    db.samples.add_many(rows)
    db.samples.set_next_id(int(meta["next_sample_id"]))
    db.set_meta(
        {"samples_bundle": model.bundle_id, "bottleneck_shape": list(model.bottleneck_shape)}
    )
    db.head.save(HeadState(model.bundle_id, params, state, int(meta["steps"]), int(meta["epochs"])))
    return n


def migrate(legacy: Path, db: StateDatabase, model: Any) -> list[str]:
    """Import ``legacy`` (a ``state.npz`` beside a new database) and keep it renamed as a
    backup; when it cannot be imported it is renamed aside and the state starts fresh.
    Returns the warnings that say which happened."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = legacy.with_name(f"{LEGACY_STATE}.imported-{stamp}")
    try:
        imported = import_npz(legacy, db, model)
    except StateFileError as exc:
        os.replace(legacy, legacy.with_name(f"{LEGACY_STATE}.unusable-{stamp}"))
        warning = (
            f"{legacy} (from an older version) could not be imported ({exc}); it was "
            f"renamed to {LEGACY_STATE}.unusable-{stamp} and the daemon started fresh"
        )
        log.warning("%s", warning)
        return [warning]
    os.replace(legacy, backup)
    message = (
        f"imported {imported} sample(s) and the trained head from {legacy.name} (an older "
        f"version's state) into {db.path.name}; the old file is kept as {backup.name}"
    )
    log.warning("%s", message)
    return [message]
