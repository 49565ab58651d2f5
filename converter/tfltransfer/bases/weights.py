"""Where MobileNetV2's pre-trained weights come from, and a fast failure when they cannot."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tfltransfer.errors import WeightsUnavailableError

WEIGHTS_HOST = "storage.googleapis.com"
CONNECT_TIMEOUT_S = 5.0


def keras_cache_file(alpha: float, image_size: int) -> Path:
    """The file Keras caches MobileNetV2 no-top ImageNet weights in."""
    rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "models" / name


def resolve_weights(weights: str | None, alpha: float, image_size: int) -> str | None:
    """Return what to hand Keras for ``weights``: ``"imagenet"``, a file path, or None.

    ``"imagenet"`` is checked first: when the weights are neither cached nor downloadable (no
    network, as on many build machines), this fails within seconds instead of hanging in Keras'
    download, and says how to provide them.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if weights == "imagenet":
        if keras_cache_file(alpha, image_size).is_file():
            return "imagenet"
        try:
            with socket.create_connection((WEIGHTS_HOST, 443), timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            raise WeightsUnavailableError(
                f"cannot download MobileNetV2 ImageNet weights ({WEIGHTS_HOST} unreachable: "
                f"{exc}). Download them where there is network and pass the file with "
                f"--base_weights PATH (Python: MobileNetV2Base(weights=PATH)), copy it to "
                f"{keras_cache_file(alpha, image_size)}, or use --base_weights none for random "
                "weights (testing only)."
            ) from None
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(
            f"--base_weights {weights}: no such file; give a MobileNetV2 (include_top=False) "
            "weights file, 'imagenet' or 'none'"
        )
    return str(path)
