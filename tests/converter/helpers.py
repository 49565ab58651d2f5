"""Helpers for the converter tests: run a written bundle in LiteRT, standard test heads."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from personalizer import bundle_format as fmt
from tfltransfer import heads

TINY_IMAGE = 32
TINY_BOTTLENECK = (8, 8, 6)


class LiteBundle:
    """Runs the models of a written bundle in the LiteRT interpreter (as the board would)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest = json.loads((self.path / "manifest.json").read_text())
        self._runners = {}

    def runner(self, name: str):
        """The signature runner of model ``name``."""
        if name not in self._runners:
            interpreter = Interpreter(model_path=str(self.path / fmt.model_file(name)))
            self._runners[name] = interpreter.get_signature_runner()
        return self._runners[name]

    def initialize(self) -> list[np.ndarray]:
        """Initial parameters."""
        out = self.runner("initialize")(zero=np.float32(0))
        return [out[fmt.param(i)] for i in range(len(self.manifest["parameters"]))]

    def bottleneck(self, image: np.ndarray) -> np.ndarray:
        """Bottleneck of one ``(1,H,W,3)`` image."""
        return self.runner("bottleneck")(image=image.astype(np.float32))["bottleneck"]

    def train_head(self, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> tuple:
        """``(loss, grads)``."""
        feeds = {fmt.param(i): p for i, p in enumerate(params)}
        out = self.runner("train_head")(bottlenecks=x.astype(np.float32), labels=y, **feeds)
        return float(out[fmt.LOSS]), [out[fmt.grad(i)] for i in range(len(params))]

    def optimizer(self, params: list, grads: list, state: list) -> tuple[list, list]:
        """``(new_params, new_state)``."""
        feeds = {fmt.param(i): p for i, p in enumerate(params)}
        feeds.update({fmt.grad(i): g for i, g in enumerate(grads)})
        feeds.update({fmt.state(j): s for j, s in enumerate(state)})
        out = self.runner("optimizer")(**feeds)
        return (
            [out[fmt.new_param(i)] for i in range(len(params))],
            [out[fmt.new_state(j)] for j in range(len(state))],
        )

    def initial_state(self) -> list[np.ndarray]:
        """Fresh optimizer state."""
        return [
            np.full(s["shape"], s["init"], np.float32) for s in self.manifest["optimizer"]["state"]
        ]

    def probabilities(self, bottleneck: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
        """Class probabilities of one bottleneck."""
        feeds = {fmt.param(i): p for i, p in enumerate(params)}
        return self.runner("inference")(bottleneck=bottleneck.astype(np.float32), **feeds)[
            fmt.PROBABILITIES
        ]


def softmax_head(num_classes: int = 3, l2_reg: float | None = None):
    """The built-in softmax head over the tiny base's bottleneck."""
    return heads.SoftmaxClassifierHead(8, TINY_BOTTLENECK, num_classes, l2_reg=l2_reg)


def mlp_head(num_classes: int = 3, hidden: str = "relu", l2: float = 0.01, seed: int = 1):
    """Flatten, Dense(16, hidden, L2), Dense(C, softmax, L2): the seed README's head shape."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(TINY_BOTTLENECK),
            keras.layers.Flatten(),
            keras.layers.Dense(
                16,
                activation=hidden,
                kernel_regularizer=keras.regularizers.l2(l2),
                bias_regularizer=keras.regularizers.l2(l2),
            ),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_regularizer=keras.regularizers.l2(l2),
                bias_regularizer=keras.regularizers.l2(l2),
            ),
        ]
    )


def positional_shapes(model: bytes) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Input and output shapes as a positional consumer reads them (``get_*_details()``)."""
    interpreter = Interpreter(model_content=model)
    return (
        [tuple(int(d) for d in x["shape"]) for x in interpreter.get_input_details()],
        [tuple(int(d) for d in x["shape"]) for x in interpreter.get_output_details()],
    )


def positional_signature_names(model: bytes) -> tuple[list[str], list[str]]:
    """Which signature tensor sits at each position of ``get_input/output_details()``."""
    interpreter = Interpreter(model_content=model)
    runner = interpreter.get_signature_runner()
    names = {int(d["index"]): n for n, d in runner.get_input_details().items()}
    names.update({int(d["index"]): n for n, d in runner.get_output_details().items()})
    return (
        [names[int(d["index"])] for d in interpreter.get_input_details()],
        [names[int(d["index"])] for d in interpreter.get_output_details()],
    )
