"""Write a pre-trained MobileNetV2 backbone as a no-top weights file (converter environment).

Usage: python extract_pretrained.py MODEL.h5 OUT.weights.h5

``MODEL.h5`` is a Keras classifier built on ``keras.applications.MobileNetV2`` (alpha 1.0) with
ImageNet weights and fine-tuned on top; its MobileNetV2 sub-model's weights are written as the
weights of ``MobileNetV2(include_top=False)``, which is what ``--base_weights PATH`` takes. The
convolutional weights do not depend on the input size, so the file serves every image size.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402


def main(model_file: str, out: str) -> None:
    """Find the MobileNetV2 inside ``model_file`` and save its weights to ``out``."""
    model = keras.models.load_model(model_file, compile=False)
    inner = [layer for layer in model.layers if layer.name.startswith("mobilenetv2_1.00_")]
    if len(inner) != 1:
        raise SystemExit(f"{model_file}: no single MobileNetV2 (alpha 1.0) sub-model inside")
    backbone = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None
    )
    backbone.set_weights(inner[0].get_weights())
    backbone.save_weights(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
