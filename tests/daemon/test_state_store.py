"""The state folder at start: an older version's file imported, a new bundle embedded again."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from personalizer import TransferLearningModel
from personalizer.images import decode_image, encode_image
from personalizer.store import StateStore
from tests.support import photos

CLASSES = ("cat", "coffee", "rocket", "astronaut")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_version_1_state(path: Path, model: TransferLearningModel, samples: dict) -> None:
    """A ``state.npz`` exactly as version 1.0 wrote it (meta JSON, params, state, samples)."""
    ids = np.arange(len(samples["labels"]), dtype=np.int64) * 2  # ids with gaps
    params = model.parameters()
    state = model.optimizer_state()
    meta = {
        "format": "personalizer-state",
        "format_version": 1,
        "bundle_id": model.bundle_id,
        "classes": list(CLASSES),
        "bottleneck_shape": list(model.bottleneck_shape),
        "num_parameters": len(params),
        "num_optimizer_state": len(state),
        "num_samples": len(ids),
        "steps": 3,
        "epochs": 1,
        "next_sample_id": int(ids.max()) + 5,
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        for i, p in enumerate(params):
            archive.writestr(f"param_{i}.npy", _npy(np.asarray(p) + 0.5))
        for j, s in enumerate(state):
            archive.writestr(f"optimizer_state_{j}.npy", _npy(np.asarray(s)))
        archive.writestr("sample_ids.npy", _npy(ids))
        archive.writestr("sample_labels.npy", _npy(np.asarray(samples["labels"], np.int32)))
        archive.writestr("sample_bottlenecks.npy", _npy(np.stack(samples["bottlenecks"])))


def test_a_version_1_state_file_is_imported_once_and_kept(bundle: Path, tmp_path: Path) -> None:
    maker = TransferLearningModel(bundle, CLASSES, num_threads=1)
    rows = [maker.bottleneck(photos.variant(name, i)) for i in range(2) for name in CLASSES]
    labels = [c for _ in range(2) for c in range(len(CLASSES))]
    write_version_1_state(tmp_path / "state.npz", maker, {"labels": labels, "bottlenecks": rows})

    model = TransferLearningModel(bundle, CLASSES, num_threads=1)
    store = StateStore(tmp_path)
    outcome = store.open(model)
    assert outcome.loaded and any("imported 8 sample(s)" in w for w in outcome.warnings)
    assert model.samples() == dict.fromkeys(CLASSES, 2)
    assert model.steps == 3 and model.epochs == 1
    np.testing.assert_array_equal(model.parameters()[1], maker.parameters()[1] + 0.5)
    snapshot = model.sample_snapshot()
    assert snapshot.ids.tolist() == list(range(0, 16, 2))
    np.testing.assert_array_equal(snapshot.bottlenecks[0], rows[0].astype(np.float16))
    backups = list(tmp_path.glob("state.npz.imported-*"))
    assert len(backups) == 1 and not (tmp_path / "state.npz").exists()
    store.close()
    # Next start: the database, no second import.
    again = TransferLearningModel(bundle, CLASSES, num_threads=1)
    second = StateStore(tmp_path).open(again)
    assert second.warnings == () and again.samples() == dict.fromkeys(CLASSES, 2)
    assert again.add_sample_bottleneck(rows[0], "cat", None) >= 19  # ids go on after 18


def _taught_store(bundle: Path, folder: Path, store_images: bool) -> dict[int, np.ndarray]:
    """A state with two samples of each class, as the daemon stores them."""
    model = TransferLearningModel(bundle, CLASSES, num_threads=1)
    store = StateStore(folder, store_images=store_images)
    store.open(model)
    crops = {}
    slots = {name: slot for slot, name in model.class_slots().items()}
    for i in range(2):
        for name in CLASSES:
            bottleneck, crop = model.embed(photos.variant(name, i), 224)
            jpeg = encode_image(crop, "JPEG", 90)
            sample_id = store.add_sample(slots[name], bottleneck, "mqtt", 1.0, jpeg)
            crops[sample_id] = decode_image(jpeg, 10**7)
    store.save(model)
    store.close()
    return crops


def test_a_new_bundle_embeds_the_samples_again_from_their_images(
    bundle: Path, spatial_bundle: Path, tmp_path: Path
) -> None:
    crops = _taught_store(bundle, tmp_path, store_images=True)
    model = TransferLearningModel(spatial_bundle, CLASSES, num_threads=1)
    progress: list[str | None] = []
    store = StateStore(tmp_path)
    outcome = store.open(model, progress.append)
    assert outcome.loaded and outcome.set_aside is None
    assert any("embedded 8 sample(s) again" in w for w in outcome.warnings), outcome
    assert model.samples() == dict.fromkeys(CLASSES, 2)
    assert model.bottleneck_shape == (3, 3, 1280)
    snapshot = model.sample_snapshot()
    for sample_id, bottleneck in zip(snapshot.ids, snapshot.bottlenecks, strict=True):
        expected = model.bottleneck(crops[int(sample_id)]).astype(np.float16)
        np.testing.assert_array_equal(bottleneck, expected)
    assert progress[-1] is None, "the progress is cleared when done"
    assert model.steps == 0, "the head of the other base was not kept"
    store.close()


def test_without_images_a_new_bundle_sets_the_samples_aside_and_says_why(
    bundle: Path, spatial_bundle: Path, tmp_path: Path
) -> None:
    _taught_store(bundle, tmp_path, store_images=False)
    model = TransferLearningModel(spatial_bundle, CLASSES, num_threads=1)
    outcome = StateStore(tmp_path, store_images=False).open(model)
    assert not outcome.loaded and outcome.set_aside is not None
    assert "other-bundle" in outcome.set_aside.name and outcome.set_aside.exists()
    warning = " ".join(outcome.warnings)
    assert "8 of 8 sample(s) have no stored image" in warning and "store_images" in warning
    assert model.samples() == dict.fromkeys(CLASSES, 0)
