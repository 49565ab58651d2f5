"""``tflite-transfer-convert`` as a user runs it: the seed's commands and every error case."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.converter.helpers import TINY_BOTTLENECK

SEED_SOFTMAX = [
    "--base_mobilenetv2",
    "--head_softmax",
    "--num_classes=4",
    "--train_batch_size=20",
    "--optimizer=sgd",
    "--sgd_learning_rate=0.0003",
]


def convert(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "tfltransfer.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def convert_here(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The CLI's ``main`` in this process (no TensorFlow start-up per run): code, out, err."""
    from tfltransfer import cli

    capsys.readouterr()
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def manifest_of(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def keras_head_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras_heads")
    good = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    conv = keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    wrong_input = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(3, activation="softmax")]
    )
    files = {}
    for name, model in {"good": good, "conv": conv, "wrong_input": wrong_input}.items():
        files[name] = folder / f"{name}.keras"
        model.save(files[name])
    (folder / "garbage.keras").write_bytes(b"not a keras file")
    files["garbage"] = folder / "garbage.keras"
    return files


def test_seed_softmax_command_works_as_written(tmp_path):
    done = convert(
        *SEED_SOFTMAX,
        "--base_weights=none",
        "--out_model_dir=mobilenet_softmax_model",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "mobilenet_softmax_model"
    # A new folder's usual mode (0755 under umask 022), not mkdtemp's 0700: copies stay readable.
    umask = os.umask(0o022)
    os.umask(umask)
    assert bundle.stat().st_mode & 0o777 == 0o777 & ~umask
    manifest = manifest_of(bundle)
    assert manifest["bottleneck"]["shape"] == [7, 7, 1280]
    assert manifest["optimizer"]["hyperparameters"] == {"learning_rate": 0.0003}
    assert manifest["requires_flex"] is False
    assert "self-check passed" in done.stdout and "train_head" in done.stdout
    assert leftovers(tmp_path) == []


def test_seed_saved_model_command_works_as_written(tmp_path, tiny_base_dir):
    head = keras.Sequential(
        [keras.Input(TINY_BOTTLENECK), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    head.export(str(tmp_path / "model_B"), verbose=False)
    os.symlink(tiny_base_dir, tmp_path / "model_A")
    done = convert(
        "--base_model_dir=model_A",
        "--head_model_dir=model_B",
        "--num_classes=4",
        "--train_batch_size=20",
        "--optimizer=sgd",
        "--sgd_learning_rate=0.0003",
        "--out_model_dir=custom_model",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    manifest = manifest_of(tmp_path / "custom_model")
    assert manifest["head"]["kind"] == "saved_model"
    assert manifest["base"]["kind"] == "saved_model"


def test_keras_head_file_adam_and_class_names(tmp_path, tiny_base_dir, keras_head_files):
    done = convert(
        f"--base_model_dir={tiny_base_dir}",
        "--base_input_range=0,255",
        f"--head_keras_model={keras_head_files['good']}",
        "--num_classes=3",
        "--class_names=cat,dog,bird",
        "--optimizer=adam",
        "--adam_learning_rate=0.01",
        f"--out_model_dir={tmp_path / 'b'}",
    )
    assert done.returncode == 0, done.stderr
    manifest = manifest_of(tmp_path / "b")
    assert manifest["class_names"] == ["cat", "dog", "bird"]
    assert manifest["optimizer"]["kind"] == "adam"
    assert manifest["optimizer"]["hyperparameters"]["learning_rate"] == 0.01
    assert manifest["requires_flex"] is False


def test_flex_head_is_converted_and_the_cli_says_so(tmp_path, tiny_base_dir, keras_head_files):
    done = convert(
        f"--base_model_dir={tiny_base_dir}",
        f"--head_keras_model={keras_head_files['conv']}",
        "--num_classes=3",
        "--optimizer=adam",
        f"--out_model_dir={tmp_path / 'b'}",
    )
    assert done.returncode == 0, done.stderr
    assert "select TensorFlow ops (Flex)" in done.stderr
    assert manifest_of(tmp_path / "b")["requires_flex"] is True


def test_tensor_base_from_the_command_line(tmp_path, capsys):
    keras.utils.set_random_seed(2)
    vectors = keras.Input((16,))
    keras.Model(vectors, keras.layers.Dense(8, activation="tanh")(vectors)).export(
        str(tmp_path / "sensor_base"), verbose=False
    )
    done = convert(
        f"--base_model_dir={tmp_path / 'sensor_base'}",
        "--base_input_range=-4,4",
        "--head_softmax",
        "--num_classes=3",
        "--optimizer=adam",
        f"--out_model_dir={tmp_path / 'b'}",
    )
    assert done.returncode == 0, done.stderr
    assert "self-check passed" in done.stdout
    manifest = manifest_of(tmp_path / "b")
    assert manifest["input"]["kind"] == "tensor"
    assert manifest["input"]["shape"] == [1, 16] and manifest["input"]["range"] == [-4.0, 4.0]
    assert manifest["bottleneck"]["shape"] == [8]
    code, _, err = convert_here(
        capsys,
        f"--base_model_dir={tmp_path / 'sensor_base'}",
        f"--representative_images={tmp_path}",
        "--head_softmax",
        "--optimizer=adam",
        f"--out_model_dir={tmp_path / 'c'}",
    )
    assert code == 1 and "needs an image base" in err
    assert not (tmp_path / "c").exists()


def test_existing_bundle_is_replaced(tmp_path, tiny_base_dir, capsys):
    args = [
        f"--base_model_dir={tiny_base_dir}",
        "--head_softmax",
        "--num_classes=3",
        "--optimizer=adam",
        f"--out_model_dir={tmp_path / 'b'}",
        "--no_verify",
    ]
    assert convert_here(capsys, *args)[0] == 0
    first = manifest_of(tmp_path / "b")["bundle_id"]
    code, _, err = convert_here(
        capsys, *args[:-2], "--optimizer=sgd", "--sgd_learning_rate=0.1", *args[-2:]
    )
    assert code == 0, err
    assert manifest_of(tmp_path / "b")["bundle_id"] != first
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--base_mobilenetv2", "--head_softmax", "--optimizer=sgd"],
            "--sgd_learning_rate",
        ),
        (
            [
                "--base_mobilenetv2",
                "--head_softmax",
                "--optimizer=adam",
                "--bogus_flag",
            ],
            "unrecognized arguments: --bogus_flag",
        ),
        (["--head_softmax", "--optimizer=adam"], "--base_mobilenetv2"),
        (
            [
                "--base_mobilenetv2",
                "--base_model_dir=x",
                "--head_softmax",
                "--optimizer=adam",
            ],
            "not allowed with",
        ),
        (
            [
                "--base_mobilenetv2",
                "--head_softmax",
                "--optimizer=adam",
                "--num_classes=3",
                "--class_names=a,b",
            ],
            "--class_names has 2 names",
        ),
        (
            ["--base_mobilenetv2", "--head_softmax", "--optimizer=adam", "--edgetpu"],
            "--representative_images",
        ),
        (
            [
                "--base_mobilenetv2",
                "--base_input_range=0,255",
                "--head_softmax",
                "--optimizer=adam",
            ],
            "apply to --base_model_dir only",
        ),
        (
            ["--base_model_dir=x", "--base_input_range=1,0", "--head_softmax", "--optimizer=adam"],
            "the upper above the lower",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path, args, message):
    done = convert(*args, f"--out_model_dir={tmp_path / 'out'}")
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_input_errors_exit_1_and_write_nothing(tmp_path, tiny_base_dir, keras_head_files, capsys):
    not_saved_model = tmp_path / "plain_dir"
    not_saved_model.mkdir()
    (tmp_path / "user_files").mkdir()
    (tmp_path / "user_files" / "notes.txt").write_text("mine")
    base = [f"--base_model_dir={tiny_base_dir}", "--optimizer=adam"]
    cases = [
        (
            ["--base_model_dir=/nonexistent", "--head_softmax", "--optimizer=adam"],
            "no such directory",
        ),
        (
            [
                f"--base_model_dir={not_saved_model}",
                "--head_softmax",
                "--optimizer=adam",
            ],
            "not a TensorFlow SavedModel",
        ),
        (
            [
                *base,
                f"--head_keras_model={keras_head_files['wrong_input']}",
                "--num_classes=3",
            ],
            "the head takes bottlenecks of shape (10,) but the base produces (8, 8, 6)",
        ),
        (
            [
                *base,
                f"--head_keras_model={keras_head_files['good']}",
                "--num_classes=5",
            ],
            "outputs 3 values but --num_classes is 5",
        ),
        (
            [*base, f"--head_keras_model={keras_head_files['garbage']}"],
            "cannot load it",
        ),
        ([*base, f"--head_model_dir={not_saved_model}"], "not a TensorFlow SavedModel"),
        (
            [
                *base,
                "--head_softmax",
                "--edgetpu",
                f"--representative_images={tmp_path}",
            ],
            "edgetpu_compiler",
        ),
    ]
    # The first case through the installed command (its exit code and stderr), the rest through
    # the same ``main`` in this process: each subprocess pays TensorFlow's start-up.
    args, message = cases[0]
    done = convert(*args, f"--out_model_dir={tmp_path / 'out'}")
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    for args, message in cases[1:]:
        code, _, err = convert_here(capsys, *args, f"--out_model_dir={tmp_path / 'out'}")
        assert code == 1, (args, err)
        assert message in err, (message, err)
        assert not (tmp_path / "out").exists()
    code, _, err = convert_here(
        capsys, *base, "--head_softmax", f"--out_model_dir={tmp_path / 'user_files'}"
    )
    assert code == 1 and "not a bundle" in err
    assert [p.name for p in (tmp_path / "user_files").iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []


def _network_reachable() -> bool:
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(_network_reachable(), reason="weights can be downloaded on this machine")
def test_imagenet_weights_without_network_fail_fast(tmp_path):
    started = time.monotonic()
    done = convert(
        *SEED_SOFTMAX,
        f"--out_model_dir={tmp_path / 'out'}",
        env={"KERAS_HOME": str(tmp_path / "keras")},
    )
    assert done.returncode == 1
    assert "--base_weights PATH" in done.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()


def test_weights_file_is_used(tmp_path):
    net = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3),
        alpha=0.35,
        include_top=False,
        weights=None,
        pooling="avg",
    )
    net.save_weights(tmp_path / "mnv2.weights.h5")
    done = convert(
        "--base_mobilenetv2",
        "--base_image_size=96",
        "--base_alpha=0.35",
        "--base_pooling=avg",
        f"--base_weights={tmp_path / 'mnv2.weights.h5'}",
        "--head_softmax",
        "--optimizer=adam",
        "--no_verify",
        f"--out_model_dir={tmp_path / 'b'}",
    )
    assert done.returncode == 0, done.stderr
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(
        model_path=str(tmp_path / "b" / "bottleneck.tflite")
    ).get_signature_runner()
    image = np.random.default_rng(0).uniform(size=(1, 96, 96, 3)).astype(np.float32)
    expected = np.asarray(net(image * 2 - 1))
    np.testing.assert_allclose(runner(image=image)["bottleneck"], expected, rtol=1e-4, atol=1e-4)


def test_quantized_bases(tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)).save(
            photos / f"{i}.png"
        )
    common = [
        "--base_mobilenetv2",
        "--base_image_size=96",
        "--base_alpha=0.35",
        "--base_pooling=avg",
        "--base_weights=none",
        "--head_softmax",
        "--optimizer=adam",
    ]
    sizes = {}
    for name, extra in {
        "float": [],
        "dynamic": ["--base_quantize"],
        "int8": [f"--representative_images={photos}"],
    }.items():
        code, _, err = convert_here(capsys, *common, *extra, f"--out_model_dir={tmp_path / name}")
        assert code == 0, err
        manifest = manifest_of(tmp_path / name)
        sizes[name] = manifest["files"]["bottleneck.tflite"]["size"]
        expected = {"float": "none", "dynamic": "dynamic_range", "int8": "int8"}[name]
        assert manifest["base"]["quantization"] == expected
        assert manifest["models"]["bottleneck"]["inputs"][0]["dtype"] == "float32"
    assert sizes["dynamic"] < sizes["float"] / 2
    assert sizes["int8"] < sizes["float"] / 2
