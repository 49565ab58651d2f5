"""The seed README's Python example runs as written when ImageNet weights are available.

The weights are "available" the way Keras finds them on a machine that downloaded them once: a
file in ``$KERAS_HOME/models``. This machine has no network, so the file holds random weights in
Keras' own legacy HDF5 layout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import keras
from keras.src.legacy.saving import legacy_h5_format

from tfltransfer.bases.weights import keras_cache_file

SEED_EXAMPLE = textwrap.dedent(
    """
    import tensorflow as tf
    from tensorflow.keras import layers
    from tensorflow.keras.regularizers import l2
    from tfltransfer import bases
    from tfltransfer import heads
    from tfltransfer import optimizers
    from tfltransfer.tflite_transfer_converter import TFLiteTransferConverter

    base = bases.MobileNetV2Base(image_size=224)
    head = tf.keras.Sequential([
        layers.Flatten(input_shape=(7, 7, 1280)),
        layers.Dense(
            units=32,
            activation='relu',
            kernel_regularizer=l2(0.01),
            bias_regularizer=l2(0.01)),
        layers.Dense(
            units=4,
            activation='softmax',
            kernel_regularizer=l2(0.01),
            bias_regularizer=l2(0.01)),
    ])

    # Optimizer is ignored by the converter! See docs.
    head.compile(loss='categorical_crossentropy', optimizer='sgd')

    converter = TFLiteTransferConverter(4,
                                        base,
                                        heads.KerasModelHead(head),
                                        optimizers.SGD(3e-2),
                                        train_batch_size=20)

    converter.convert_and_save('custom_keras_model')
    """
)


def test_seed_readme_keras_example_runs_as_written(tmp_path: Path) -> None:
    keras_home = tmp_path / "keras_home"
    cached = keras_cache_file(1.0, 224).relative_to(
        Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    )
    (keras_home / cached).parent.mkdir(parents=True)
    net = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None)
    with h5py.File(keras_home / cached, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, net)
    (tmp_path / "example.py").write_text(SEED_EXAMPLE)
    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env={**os.environ, "KERAS_HOME": str(keras_home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "custom_keras_model"
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [
            "bottleneck.tflite",
            "initialize.tflite",
            "train_head.tflite",
            "inference.tflite",
            "optimizer.tflite",
            "manifest.json",
        ]
    )
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["base"]["weights"] == "imagenet"
    assert manifest["requires_flex"] is False  # the seed needed Flex for this head
    assert manifest["head"]["layers"] == ["flatten", "dense(32, relu)", "dense(4, softmax)"]
