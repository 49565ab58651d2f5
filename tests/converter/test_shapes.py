"""Shapes and signatures, as the seed's own tests checked them, for real conversions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.converter.helpers import TINY_BOTTLENECK, TINY_IMAGE, mlp_head, softmax_head
from tfltransfer import bases, heads, optimizers

MODELS = ("initialize", "bottleneck", "train_head", "inference", "optimizer")


@pytest.fixture(scope="module")
def mobilenet_224(build_bundle):
    base = bases.MobileNetV2Base(image_size=224, weights=None)
    head = heads.SoftmaxClassifierHead(20, (7, 7, 1280), 4)
    return build_bundle(head, optimizers.Adam(), base=base, num_classes=4, batch=20)


def test_mobilenet_224_bundle_has_the_seeds_files_and_shapes(mobilenet_224):
    files = sorted(p.name for p in mobilenet_224.path.iterdir())
    assert files == sorted([f"{m}.tflite" for m in MODELS] + ["manifest.json"])
    manifest = mobilenet_224.manifest
    assert manifest["input"]["shape"] == [1, 224, 224, 3]
    assert manifest["bottleneck"]["shape"] == [7, 7, 1280]
    assert [p["shape"] for p in manifest["parameters"]] == [[62720, 4], [4]]
    out = mobilenet_224.bottleneck(np.random.default_rng(0).uniform(size=(1, 224, 224, 3)))
    assert out.shape == (1, 7, 7, 1280)


def test_adam_optimizer_signature_carries_moments_and_step(mobilenet_224):
    opt = mobilenet_224.manifest["models"]["optimizer"]
    names = [i["name"] for i in opt["inputs"]]
    assert names == ["param_0", "param_1", "grad_0", "grad_1"] + [f"state_{j}" for j in range(5)]
    state = mobilenet_224.manifest["optimizer"]["state"]
    assert [s["name"] for s in state] == [
        "m/dense/kernel",
        "m/dense/bias",
        "v/dense/kernel",
        "v/dense/bias",
        "step",
    ]
    assert [o["name"] for o in opt["outputs"]][-1] == "new_state_4"


def test_train_head_batch_is_dynamic(mobilenet_224):
    spec = mobilenet_224.manifest["models"]["train_head"]["inputs"]
    assert spec[0] == {
        "name": "bottlenecks",
        "shape": [-1, 7, 7, 1280],
        "dtype": "float32",
    }
    assert spec[1] == {"name": "labels", "shape": [-1, 4], "dtype": "float32"}
    assert mobilenet_224.manifest["train"] == {
        "max_batch_size": 20,
        "dynamic_batch": True,
        "loss": "categorical_crossentropy",
    }


@pytest.mark.parametrize(
    ("size", "pooling", "expected"), [(160, None, (5, 5, 1280)), (96, "avg", (1280,))]
)
def test_bottleneck_shape_is_read_from_the_converted_base(build_bundle, size, pooling, expected):
    base = bases.MobileNetV2Base(image_size=size, alpha=0.35, weights=None, pooling=pooling)
    bundle = build_bundle(heads.SoftmaxClassifierHead(4, None, 3), base=base, verify=False)
    assert tuple(bundle.manifest["bottleneck"]["shape"]) == expected
    image = np.zeros((1, size, size, 3), np.float32)
    assert bundle.bottleneck(image).shape == (1, *expected)


def test_sgd_bundle_on_a_saved_model_base(build_bundle):
    bundle = build_bundle(softmax_head(), optimizers.SGD(0.5))
    manifest = bundle.manifest
    assert manifest["input"]["shape"] == [1, TINY_IMAGE, TINY_IMAGE, 3]
    assert tuple(manifest["bottleneck"]["shape"]) == TINY_BOTTLENECK
    assert manifest["optimizer"] == {
        "kind": "sgd",
        "hyperparameters": {"learning_rate": 0.5},
        "state": [],
    }
    names = [i["name"] for i in manifest["models"]["optimizer"]["inputs"]]
    assert names == ["param_0", "param_1", "grad_0", "grad_1"]
    params = bundle.initialize()
    assert [p.shape for p in params] == [(8 * 8 * 6, 3), (3,)]
    assert all(not p.any() for p in params)  # the seed's softmax head starts at zero


def test_keras_head_parameters_start_at_the_keras_weights(build_bundle):
    model = mlp_head()
    bundle = build_bundle(heads.KerasModelHead(model))
    for got, expected in zip(bundle.initialize(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    names = [p["name"] for p in bundle.manifest["parameters"]]
    assert len(names) == 4 and names[0].endswith("/kernel")


def test_manifest_hashes_and_id_match_the_files(build_bundle):
    import hashlib

    from personalizer.bundle_format import bundle_id_of

    bundle = build_bundle(softmax_head(), verify=False)
    files = bundle.manifest["files"]
    for name, entry in files.items():
        content = (bundle.path / name).read_bytes()
        assert entry == {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
        }
    assert bundle.manifest["bundle_id"] == bundle_id_of({n: e["sha256"] for n, e in files.items()})
    assert bundle.manifest["format"] == "tflite-transfer-bundle"
    assert bundle.manifest["format_version"] == 1
