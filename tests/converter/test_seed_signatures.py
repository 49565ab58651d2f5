"""The seed's positional contract, as its converter tests checked it, for every head and optimizer.

A consumer that reads the models by position (the seed's Android ``transfer_api``, its Python
test consumer) sees, in ``get_input_details()`` / ``get_output_details()`` order:

- initialize ``[()]`` -> params; bottleneck ``[(1, *input)]`` -> ``[(1, *bottleneck)]``
- train_head ``[(B, *bottleneck), (B, C), *params]`` -> ``[(), *grads]``
- inference ``[(1, *bottleneck), *params]`` -> ``[(1, C)]``
- optimizer SGD ``[*params, *grads]`` -> params; Adam ``[*params, *grads, *m, *v, ()]`` ->
  ``[*params, *m, *v, ()]``

with parameters in Keras layer order, kernel before bias. Bottleneck and inference take any
batch; train_head is allocated for the full batch B and takes smaller ones after a resize.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from personalizer import bundle_format as fmt
from tests.converter.helpers import (
    TINY_BOTTLENECK,
    mlp_head,
    positional_shapes,
    positional_signature_names,
    softmax_head,
)
from tfltransfer import bases, heads, optimizers, tflite_model_info, verify
from tfltransfer.errors import BaseModelError, VerificationError
from tfltransfer.tflite_transfer_converter import TFLiteTransferConverter

FEATURES = 64  # the seed's test base: Dense(64) over 64-vectors
CLASSES = 5
BATCH = 128


@pytest.fixture(scope="module")
def dense_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A non-image base: one Dense(64) layer over (64,) vectors, as a SavedModel."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((FEATURES,))
    model = keras.Model(inputs, keras.layers.Dense(FEATURES)(inputs))
    path = tmp_path_factory.mktemp("dense_base") / "saved_model"
    model.export(str(path), verbose=False)
    return path


def seed_keras_head(num_classes: int = CLASSES) -> keras.Model:
    """The seed's test head: Dense(32, relu, L2) then Dense(C, L2), logits out."""
    l2 = keras.regularizers.l2(0.01)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=l2, bias_regularizer=l2),
            keras.layers.Dense(num_classes, kernel_regularizer=l2, bias_regularizer=l2),
        ]
    )


def assert_positional(model: bytes, inputs: list[tuple], outputs: list[tuple]) -> None:
    assert positional_shapes(model) == (inputs, outputs)


def assert_sgd_bundle_order(models: dict[str, bytes], params: list[tuple]) -> None:
    """The five models of a tensor-base bundle with SGD, in the seed's positional order."""
    assert_positional(models["initialize"], [()], params)
    assert_positional(models["bottleneck"], [(1, FEATURES)], [(1, FEATURES)])
    assert_positional(
        models["train_head"], [(BATCH, FEATURES), (BATCH, CLASSES), *params], [(), *params]
    )
    assert_positional(models["inference"], [(1, FEATURES), *params], [(1, CLASSES)])
    assert_positional(models["optimizer"], params + params, params)


def test_tensor_base_and_keras_head_have_the_seeds_positional_shapes(dense_base_dir):
    converter = TFLiteTransferConverter(
        CLASSES,
        bases.SavedModelBase(dense_base_dir),
        heads.KerasModelHead(seed_keras_head()),
        optimizers.SGD(0.001),
        BATCH,
    )
    models = converter._convert()
    assert sorted(models) == sorted(fmt.MODEL_NAMES)
    assert all(isinstance(content, bytes) for content in models.values())
    params = [(FEATURES, 32), (32,), (32, CLASSES), (CLASSES,)]
    assert_sgd_bundle_order(models, params)


def test_tensor_base_and_softmax_head_have_the_seeds_positional_shapes(dense_base_dir):
    head = heads.SoftmaxClassifierHead(BATCH, (FEATURES,), CLASSES)
    converter = TFLiteTransferConverter(
        CLASSES, bases.SavedModelBase(dense_base_dir), head, optimizers.SGD(0.001), BATCH
    )
    models = converter._convert()
    params = [(FEATURES, CLASSES), (CLASSES,)]
    assert_sgd_bundle_order(models, params)


def test_mobilenet_224_and_softmax_head_have_the_seeds_positional_shapes():
    base = bases.MobileNetV2Base(image_size=224, weights=None)
    head = heads.SoftmaxClassifierHead(BATCH, base.bottleneck_shape(), CLASSES)
    models = TFLiteTransferConverter(CLASSES, base, head, optimizers.SGD(0.001), BATCH)._convert()
    params = [(7 * 7 * 1280, CLASSES), (CLASSES,)]
    assert_positional(models["initialize"], [()], params)
    assert_positional(models["bottleneck"], [(1, 224, 224, 3)], [(1, 7, 7, 1280)])
    assert_positional(
        models["train_head"], [(BATCH, 7, 7, 1280), (BATCH, CLASSES), *params], [(), *params]
    )
    assert_positional(models["inference"], [(1, 7, 7, 1280), *params], [(1, CLASSES)])
    assert_positional(models["optimizer"], params + params, params)


def test_bottleneck_shape_is_known_before_converting(dense_base_dir, tiny_base_dir):
    # The seed builds its head from base.bottleneck_shape(); ImageNet weights are not needed
    # for it (none can be downloaded here).
    assert bases.MobileNetV2Base(image_size=224).bottleneck_shape() == (7, 7, 1280)
    assert bases.MobileNetV2Base(image_size=96, alpha=0.35, pooling="avg").bottleneck_shape() == (
        1280,
    )
    assert bases.SavedModelBase(dense_base_dir).bottleneck_shape() == (FEATURES,)
    assert bases.SavedModelBase(tiny_base_dir).bottleneck_shape() == TINY_BOTTLENECK


HEADS = {
    "softmax": lambda: softmax_head(),
    "keras_mlp": lambda: heads.KerasModelHead(mlp_head()),
    "keras_flex": lambda: heads.KerasModelHead(
        keras.Sequential(
            [
                keras.Input(TINY_BOTTLENECK),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
    ),
}
OPTIMIZERS = {"sgd": lambda: optimizers.SGD(0.1), "adam": lambda: optimizers.Adam(0.01)}


def expected_order(manifest: dict, model: str) -> tuple[list[str], list[str]]:
    n = len(manifest["parameters"])
    params = [fmt.param(i) for i in range(n)]
    grads = [fmt.grad(i) for i in range(n)]
    states = [fmt.state(j) for j in range(len(manifest["optimizer"]["state"]))]
    new = [fmt.new_param(i) for i in range(n)]
    new_states = [fmt.new_state(j) for j in range(len(states))]
    return {
        "initialize": (["zero"], params),
        "bottleneck": (["image"], ["bottleneck"]),
        "train_head": (["bottlenecks", "labels", *params], ["loss", *grads]),
        "inference": (["bottleneck", *params], ["probabilities"]),
        "optimizer": ([*params, *grads, *states], [*new, *new_states]),
    }[model]


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("head", list(HEADS))
def test_every_head_and_optimizer_has_the_positional_order(build_bundle, head, optimizer):
    bundle = build_bundle(HEADS[head](), OPTIMIZERS[optimizer](), batch=8, verify=False)
    manifest = bundle.manifest
    params = [tuple(p["shape"]) for p in manifest["parameters"]]
    for name in fmt.MODEL_NAMES:
        content = (bundle.path / fmt.model_file(name)).read_bytes()
        assert positional_signature_names(content) == expected_order(manifest, name), name
        listed = manifest["models"][name]
        assert ([t["name"] for t in listed["inputs"]], [t["name"] for t in listed["outputs"]]) == (
            expected_order(manifest, name)
        )
    optimizer_model = (bundle.path / "optimizer.tflite").read_bytes()
    if optimizer == "sgd":
        assert positional_shapes(optimizer_model) == (params + params, params)
    else:  # m and v per parameter, then the step
        assert positional_shapes(optimizer_model) == (
            params * 4 + [()],
            params * 3 + [()],
        )
    train = (bundle.path / "train_head.tflite").read_bytes()
    assert positional_shapes(train) == ([(8, *TINY_BOTTLENECK), (8, 3), *params], [(), *params])


def test_parameters_come_in_keras_layer_order_kernel_before_bias(build_bundle):
    model = mlp_head()
    bundle = build_bundle(heads.KerasModelHead(model), verify=False)
    interpreter = Interpreter(model_path=str(bundle.path / "initialize.tflite"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.float32(0))
    interpreter.invoke()
    by_position = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    for got, expected in zip(by_position, model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    names = [p["name"] for p in bundle.manifest["parameters"]]
    assert [n.rsplit("/", 1)[1] for n in names] == ["kernel", "bias", "kernel", "bias"]


def rows_match_single_runs(model: bytes, batch: np.ndarray, params: list[np.ndarray]) -> None:
    """A batch run resized to len(batch) gives, row by row, what one-row runs give."""

    def run(x: np.ndarray) -> np.ndarray:
        interpreter = Interpreter(model_content=model)
        first, *rest = interpreter.get_input_details()
        interpreter.resize_tensor_input(first["index"], list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(first["index"], x)
        for detail, value in zip(rest, params, strict=True):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    together = run(batch)
    assert together.shape[0] == len(batch)
    alone = np.concatenate([run(batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


BATCH_BASES = {
    "image": lambda dirs: bases.SavedModelBase(dirs["image"], input_range="0,255"),
    "tensor": lambda dirs: bases.SavedModelBase(dirs["tensor"]),
    "quantized_mobilenet": lambda dirs: bases.MobileNetV2Base(
        image_size=96, alpha=0.35, weights=None, quantize=True
    ),
}


@pytest.mark.parametrize("base", list(BATCH_BASES))
def test_bottleneck_and_inference_take_any_batch(build_bundle, tiny_base_dir, dense_base_dir, base):
    base = BATCH_BASES[base]({"image": tiny_base_dir, "tensor": dense_base_dir})
    bundle = build_bundle(heads.SoftmaxClassifierHead(4, None, 3), base=base, verify=False)
    rng = np.random.default_rng(0)
    inputs = rng.uniform(size=(5, *bundle.manifest["input"]["shape"][1:])).astype(np.float32)
    rows_match_single_runs((bundle.path / "bottleneck.tflite").read_bytes(), inputs, [])
    shape = tuple(bundle.manifest["bottleneck"]["shape"])
    params = [
        rng.normal(0, 0.01, p["shape"]).astype(np.float32) for p in bundle.manifest["parameters"]
    ]
    features = rng.uniform(0, 2, size=(7, *shape)).astype(np.float32)
    rows_match_single_runs((bundle.path / "inference.tflite").read_bytes(), features, params)


def test_train_head_takes_full_batches_and_smaller_after_a_resize(build_bundle):
    bundle = build_bundle(softmax_head(), batch=8, verify=False)
    model = (bundle.path / "train_head.tflite").read_bytes()
    details = Interpreter(model_content=model).get_input_details()
    assert [list(d["shape_signature"]) for d in details[:2]] == [[-1, *TINY_BOTTLENECK], [-1, 3]]
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, *TINY_BOTTLENECK)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2, 1]]
    params = [
        rng.normal(0, 0.1, p["shape"]).astype(np.float32) for p in bundle.manifest["parameters"]
    ]
    interpreter = Interpreter(model_content=model)
    for detail, value in zip(interpreter.get_input_details(), [x, y], strict=False):
        interpreter.resize_tensor_input(detail["index"], list(value.shape), strict=True)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), [x, y, *params], strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    loss, *grads = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    named_loss, named_grads = bundle.train_head(x, y, params)
    assert float(loss) == pytest.approx(named_loss, rel=1e-6)
    for got, expected in zip(grads, named_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_tensor_base_records_its_input_contract_and_is_fed_as_is(build_bundle, dense_base_dir):
    import tensorflow as tf

    bundle = build_bundle(
        heads.SoftmaxClassifierHead(8, (FEATURES,), 3),
        base=bases.SavedModelBase(dense_base_dir),
    )
    assert bundle.manifest["input"] == {
        "kind": "tensor",
        "shape": [1, FEATURES],
        "dtype": "float32",
        "range": None,
        "color_order": None,
        "layout": None,
    }
    assert bundle.manifest["base"]["input_kind"] == "tensor"
    x = np.random.default_rng(2).normal(0, 3, size=(1, FEATURES)).astype(np.float32)
    signature = tf.saved_model.load(str(dense_base_dir)).signatures["serving_default"]
    (expected,) = signature(tf.constant(x)).values()
    np.testing.assert_allclose(bundle.bottleneck(x), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_tensor_base_range_is_recorded_not_folded(build_bundle, dense_base_dir):
    base = bases.SavedModelBase(dense_base_dir, input_range="-32768,32767")
    bundle = build_bundle(heads.SoftmaxClassifierHead(8, (FEATURES,), 3), base=base, verify=False)
    assert bundle.manifest["input"]["range"] == [-32768.0, 32767.0]
    assert bundle.manifest["base"]["native_input_range"] == [-32768.0, 32767.0]


def test_image_base_keeps_the_image_contract(build_bundle):
    manifest = build_bundle(softmax_head(), verify=False).manifest
    assert manifest["input"] == {
        "kind": "image",
        "shape": [1, 32, 32, 3],
        "dtype": "float32",
        "range": [0.0, 1.0],
        "color_order": "RGB",
        "layout": "NHWC",
    }


def _export(path: Path, inputs: keras.KerasTensor, outputs: keras.KerasTensor) -> Path:
    keras.Model(inputs, outputs).export(str(path), verbose=False)
    return path


def test_saved_model_bases_that_cannot_work_are_refused(tmp_path, dense_base_dir):
    ints = keras.Input((8,), dtype="int32")
    int_dir = _export(tmp_path / "ints", ints, keras.layers.Embedding(10, 4)(ints))
    with pytest.raises(BaseModelError, match="int32.*float32"):
        bases.SavedModelBase(int_dir)
    ragged = keras.Input((None, 4))
    ragged_dir = _export(tmp_path / "ragged", ragged, keras.layers.Dense(2)(ragged))
    with pytest.raises(BaseModelError, match="every other dimension fixed"):
        bases.SavedModelBase(ragged_dir)
    with pytest.raises(BaseModelError, match="image base"):
        bases.SavedModelBase(dense_base_dir, input_kind="image")


def test_an_image_shaped_tensor_base_is_not_scaled(build_bundle, tiny_base_dir):
    base = bases.SavedModelBase(tiny_base_dir, input_kind="tensor")
    bundle = build_bundle(softmax_head(), base=base, verify=False)
    assert bundle.manifest["input"]["kind"] == "tensor"
    assert bundle.manifest["input"]["range"] is None


def test_class_axes_are_recorded_for_the_output_layer(build_bundle, tmp_path):
    assert [
        p["class_axis"] for p in build_bundle(softmax_head(), verify=False).manifest["parameters"]
    ] == [1, 0]
    mlp = build_bundle(heads.KerasModelHead(mlp_head()), verify=False).manifest
    assert [p["class_axis"] for p in mlp["parameters"]] == [None, None, 1, 0]
    flex = build_bundle(HEADS["keras_flex"](), verify=False).manifest
    assert [p["class_axis"] for p in flex["parameters"]] == [None, None, 1, 0]
    keras.utils.set_random_seed(3)
    saved = keras.Sequential(
        [keras.Input(TINY_BOTTLENECK), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    saved.export(str(tmp_path / "head"), verbose=False)
    manifest = build_bundle(heads.SavedModelHead(tmp_path / "head"), verify=False).manifest
    assert [p["class_axis"] for p in manifest["parameters"]] == [1, 0]


def test_the_self_check_fails_when_the_positional_order_is_wrong(tmp_path, tiny_base_dir):
    base = bases.SavedModelBase(tiny_base_dir, input_range="0,255")
    converter = TFLiteTransferConverter(3, base, softmax_head(), optimizers.Adam(), 8)
    converter.convert_and_save(tmp_path / "bundle")
    models, _manifest, program = converter.convert()
    path = tmp_path / "bundle" / "optimizer.tflite"
    order = fmt.signature_order("optimizer", 2, 5)
    swapped = (order.inputs[1], order.inputs[0], *order.inputs[2:])  # param_1 before param_0
    path.write_bytes(
        tflite_model_info.rewrite(
            path.read_bytes(), tflite_model_info.positional_order(swapped, order.outputs)
        )
    )
    with pytest.raises(VerificationError, match=r"optimizer: positional inputs are \['param_1'"):
        verify.verify_bundle(tmp_path / "bundle", converter, program, models)
