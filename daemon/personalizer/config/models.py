"""The configuration's sections as typed models: every key, its default and its range, once.

A section is a frozen pydantic model that forbids unknown keys. Values are checked for type and
range here (the value types are in :mod:`.values`, how a key is declared in :mod:`.fields`); what
needs the file system or another section (the bundle's manifest, password files, pins against
classes) is checked in :mod:`.checks`. Relative paths are taken relative to the config file's
folder, which validation receives as ``context={"base": folder}``. The sections of the board's
devices are in :mod:`.devices`, those of what it talks to in :mod:`.network`; :data:`SECTIONS`
lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, StrictBool, StrictInt

from ..model.interpreters import default_num_threads
from ..schema import StrictModel
from ..trainer import plateau
from .devices import CameraConfig, GpioConfig
from .fields import PATH, setting
from .network import FleetConfig, MqttConfig, WebConfig
from .values import (
    ClassName,
    ConfigPath,
    EdgeTpuDevice,
    Names,
)


class ModelConfig(StrictModel):
    """`[model]`: which bundle to run and how."""

    bundle: Annotated[
        ConfigPath,
        setting(
            "The bundle written by `tflite-transfer-convert` on a workstation: its folder or a "
            ".zip of it.",
            allowed=PATH,
            toml='"/var/lib/personalizer/bundle"',
        ),
    ]
    classes: Annotated[
        Names,
        setting(
            "Names of the classes a new board starts with: at most as many as the bundle has "
            "class slots (its --num_classes, e.g. 8 or 16). Classes are added, renamed and "
            "removed on the board (the web page, cmd/class); those changes are kept in the "
            "state and this list is not read again once the board has a state. Empty: the "
            "bundle's own class names."
        ),
    ] = ()
    runtime: Annotated[
        Literal["auto", "tflite_runtime", "ai_edge_litert", "tensorflow"],
        setting(
            'The TFLite interpreter package: "auto" (tflite_runtime, then ai_edge_litert, then '
            'tensorflow), "tflite_runtime", "ai_edge_litert" or "tensorflow".'
        ),
    ] = "auto"
    num_threads: Annotated[
        StrictInt | None,
        setting(
            "Threads of the base model's interpreter. 0: one less than the number of cores (at "
            "least 1, at most 4), which leaves a core to the camera, MQTT and the trainer: a "
            "base model that has to share its cores with them slows down far more than the one "
            "thread it gives up.",
            ge=0,
            le=64,
            hint=" (0: one less than the number of cores, 1 to 4)",
            toml="0",
        ),
        AfterValidator(lambda n: n or None),
    ] = None
    delegate: Annotated[
        Literal["none", "edgetpu"] | None,
        setting(
            '"none" runs everything on the CPU; "edgetpu" runs the base model on a Coral Edge '
            "TPU (falls back to the CPU, with a warning, when no Edge TPU is found). The "
            "bundle's bottleneck_edgetpu.tflite (tflite-transfer-convert --edgetpu) is used "
            "when present.",
            toml='"none"',
        ),
        AfterValidator(lambda d: None if d == "none" else d),
    ] = None
    device: Annotated[
        EdgeTpuDevice,
        setting(
            'With delegate = "edgetpu": which one, as libedgetpu names them: "usb", "pci", ":0" '
            '(the first found), "usb:1". Leave it out to take the first Edge TPU found.',
            toml='"usb"',
            commented=True,
        ),
    ] = None

    @property
    def base_threads(self) -> int:
        """Threads for the base model: `num_threads`, or the runtime's default (one less than
        the cores, 1 to 4: see ``model.interpreters.default_num_threads``)."""
        return self.num_threads or default_num_threads()


class InferenceConfig(StrictModel):
    """`[inference]`: how often to classify and when a new class is announced."""

    rate: Annotated[
        float,
        setting(
            "Classifications per second, on the newest frame; 0 classifies every new frame.",
            ge=0.0,
            le=1000.0,
            hint=" (classifications per second; 0 = every frame)",
        ),
    ] = 5.0
    min_confidence: Annotated[
        float,
        setting(
            "A class is announced only after it was the top class with at least this "
            "probability...",
            ge=0.0,
            le=1.0,
        ),
    ] = 0.6
    agree_frames: Annotated[
        StrictInt,
        setting(
            "...in this many consecutive classified frames (1 announces every confident frame).",
            ge=1,
            le=1000,
        ),
    ] = 3
    publish_interval: Annotated[
        float,
        setting(
            "An unchanged class is republished at most every this many seconds; a new class is "
            "published at once. 0 publishes every classified frame.",
            ge=0.0,
            le=86400.0,
            hint=" seconds",
        ),
    ] = 1.0
    unknown_label: Annotated[
        ClassName,
        setting(
            "The class reported for a frame that is none of the taught classes (it is far from "
            "all of their samples; the threshold is measured on the samples). Published like a "
            'class, with "known": false.'
        ),
    ] = "unknown"


class TrainingConfig(StrictModel):
    """`[training]`: the background trainer."""

    epochs_per_cycle: Annotated[
        StrictInt,
        setting(
            "Epochs per training cycle: `cmd/train start` (or the train button) trains this "
            "many epochs, then stops by itself. 0 (the default) stops when the loss stops "
            f"improving: after {plateau.PATIENCE} epochs that did not beat the best loss by "
            f"{plateau.MIN_IMPROVEMENT:.0%}, or at a loss under {plateau.CONVERGED}, at most "
            f"{plateau.MAX_EPOCHS} epochs.",
            ge=0,
            le=1_000_000,
            hint=" (0 = until the loss stops improving)",
        ),
    ] = 0
    until_stopped: Annotated[
        StrictBool,
        setting(
            "true: with epochs_per_cycle = 0, train until `cmd/train stop` (or the train button) "
            "instead of stopping when the loss stops improving."
        ),
    ] = False
    min_epoch_interval: Annotated[
        float,
        setting(
            "Minimum seconds from the start of one epoch to the start of the next. Leaves CPU "
            "time for inference and keeps <root>/loss to a readable rate; 0 trains flat out.",
            ge=0.0,
            le=3600.0,
            hint=" seconds",
        ),
    ] = 0.2
    autosave_interval: Annotated[
        float,
        setting(
            "While training, the state is saved at most this often (seconds); it is always "
            "saved when training stops and on shutdown, and every sample is stored at once.",
            ge=1.0,
            le=86400.0,
            hint=" seconds",
        ),
    ] = 30.0
    auto_start: Annotated[
        StrictBool,
        setting("Start training when the daemon starts, if the saved state has samples."),
    ] = False
    imprint: Annotated[
        StrictBool,
        setting(
            "Until the head is trained for the first time, set it from the mean of each "
            'class\'s samples after every new sample ("weight imprinting"), so predictions are '
            "useful at once. Only for bundles whose head is one softmax layer; others ignore it."
        ),
    ] = True


class StateConfig(StrictModel):
    """`[state]`: where samples and parameters are kept between runs."""

    dir: Annotated[
        ConfigPath,
        setting(
            "Where samples, parameters and optimizer state are kept (created 0700; systemd's "
            "StateDirectory=personalizer gives /var/lib/personalizer).",
            allowed=PATH,
        ),
        AfterValidator(lambda p: p or Path("/var/lib/personalizer")),
    ] = Path("/var/lib/personalizer")
    store_images: Annotated[
        StrictBool,
        setting(
            "Keep a JPEG (10-20 KB) of the model's view of each sample: the gallery's "
            "thumbnails, and the samples can be embedded again when you install another bundle. "
            "false keeps no images (then a new bundle means new samples)."
        ),
    ] = True


SECTIONS: dict[str, type[StrictModel]] = {
    "model": ModelConfig,
    "camera": CameraConfig,
    "inference": InferenceConfig,
    "training": TrainingConfig,
    "mqtt": MqttConfig,
    "state": StateConfig,
    "gpio": GpioConfig,
    "web": WebConfig,
    "fleet": FleetConfig,
}
