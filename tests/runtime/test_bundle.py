"""Loading a bundle: folder or zip, and every defect refused with a message naming it."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from personalizer import (
    BundleError,
    BundleHashMismatch,
    BundleNotFoundError,
    FlexRequiredError,
    UnsupportedBundleVersion,
)
from personalizer.bundle_format import bundle_id_of
from personalizer.model.bundle import load_bundle


@pytest.fixture
def bundle_copy(bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the test bundle to damage."""
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


def _edit_manifest(folder: Path, edit) -> None:
    path = folder / "manifest.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _zip(folder: Path, target: Path, top: str | None) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{top}/{file.name}" if top else file.name)
    return target


def test_folder_bundle_loads_with_its_manifest(bundle) -> None:
    bundle = load_bundle(bundle)
    manifest = bundle.manifest
    assert manifest.format_version == 1
    assert manifest.class_names == ("A", "B", "C", "D")
    assert manifest.input_shape == (1, 96, 96, 3)
    assert manifest.bottleneck_shape == (1280,)
    assert [p.shape for p in manifest.parameters] == [(1280, 4), (4,)]
    assert manifest.optimizer.kind == "adam"
    assert manifest.max_batch_size == 20 and manifest.dynamic_batch
    assert bundle.bundle_id == bundle_id_of(manifest.file_hashes)


@pytest.mark.parametrize("top", [None, "my_bundle"], ids=["flat", "with-top-folder"])
def test_zip_bundle_runs_like_the_folder(make_model, bundle, tmp_path, top) -> None:
    archive = _zip(bundle, tmp_path / "bundle.zip", top)
    zipped, folder = make_model(archive), make_model(bundle)
    assert zipped.bundle_id == folder.bundle_id
    frame = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(zipped.bottleneck(frame), folder.bottleneck(frame))


def test_missing_bundle_path(make_model, tmp_path) -> None:
    with pytest.raises(BundleNotFoundError, match="nowhere"):
        make_model(tmp_path / "nowhere")


def test_folder_without_manifest(make_model, tmp_path) -> None:
    with pytest.raises(BundleError, match="no manifest.json"):
        make_model(tmp_path)


def test_file_that_is_not_a_zip(make_model, tmp_path) -> None:
    junk = tmp_path / "bundle.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(BundleError, match="neither a bundle folder nor a readable .zip"):
        make_model(junk)


def test_changed_model_file_is_refused_by_hash(make_model, bundle_copy) -> None:
    path = bundle_copy / "train_head.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleHashMismatch, match=r"train_head\.tflite has sha256"):
        make_model(bundle_copy)


def test_truncated_model_file_is_refused_by_size(make_model, bundle_copy) -> None:
    path = bundle_copy / "inference.tflite"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BundleHashMismatch, match=r"inference\.tflite has \d+ bytes"):
        make_model(bundle_copy)


def test_missing_model_file(make_model, bundle_copy) -> None:
    (bundle_copy / "optimizer.tflite").unlink()
    with pytest.raises(BundleHashMismatch, match="'optimizer.tflite' .* is missing"):
        make_model(bundle_copy)


def test_unknown_format_version(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(format_version=2))
    with pytest.raises(UnsupportedBundleVersion, match="format_version 2"):
        make_model(bundle_copy)


def test_foreign_format(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(format="something-else"))
    with pytest.raises(UnsupportedBundleVersion, match="something-else"):
        make_model(bundle_copy)


def test_edited_bundle_id(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(bundle_id="0123456789abcdef"))
    with pytest.raises(BundleHashMismatch, match="bundle_id"):
        make_model(bundle_copy)


def test_missing_manifest_field_is_named(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d["train"].pop("max_batch_size"))
    with pytest.raises(BundleError, match=r"missing field train\.max_batch_size"):
        make_model(bundle_copy)


def test_wrong_field_type_is_named(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d.update(num_classes="four"))
    with pytest.raises(BundleError, match="num_classes must be a whole number"):
        make_model(bundle_copy)


def test_manifest_shape_that_contradicts_the_model(make_model, bundle_copy) -> None:
    def edit(doc):
        # Consistent inside the manifest (so the manifest check passes), wrong for the model.
        doc["bottleneck"]["shape"] = [1000]
        doc["parameters"][0]["shape"] = [1000, 4]
        for opt_state in doc["optimizer"]["state"][::2][:2]:
            opt_state["shape"] = [1000, 4]
        for model in doc["models"].values():
            for tensor in model["inputs"] + model["outputs"]:
                shape = tensor["shape"]
                if shape[-1:] == [1280]:
                    tensor["shape"] = shape[:-1] + [1000]
                if shape == [1280, 4]:
                    tensor["shape"] = [1000, 4]

    _edit_manifest(bundle_copy, edit)
    # The bottleneck model's batch is open (-1): it takes any batch.
    with pytest.raises(BundleError, match=r"has shape \[-1, 1280\] in the model, the manifest "):
        make_model(bundle_copy)


def test_manifest_missing_a_signature_name(make_model, bundle_copy) -> None:
    _edit_manifest(bundle_copy, lambda d: d["models"]["train_head"]["outputs"].pop())
    with pytest.raises(BundleError, match=r"models\.train_head\.outputs has no 'grad_1'"):
        make_model(bundle_copy)


def test_flex_bundle_is_refused_without_flex(make_model, bundle_copy) -> None:
    def edit(doc):
        doc["requires_flex"] = True
        doc["models"]["train_head"]["requires_flex"] = True

    _edit_manifest(bundle_copy, edit)
    with pytest.raises(FlexRequiredError, match="select TensorFlow ops"):
        make_model(bundle_copy)


def test_file_name_escaping_the_bundle_is_refused(make_model, bundle_copy) -> None:
    def edit(doc):
        doc["files"]["../outside"] = {"sha256": "0" * 64, "size": 1}

    _edit_manifest(bundle_copy, edit)
    with pytest.raises(BundleError):
        make_model(bundle_copy)
