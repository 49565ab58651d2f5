"""The configuration's sections as typed models: every key, its default and its range, once.

A section is a frozen pydantic model that forbids unknown keys. Values are checked for type and
range here (the value types are in :mod:`.values`); what needs the file system or another section
(the bundle's manifest, password files, pins against classes) is checked in :mod:`.checks`.
Relative paths are taken relative to the config file's folder, which validation receives as
``context={"base": folder}``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, StrictBool, StrictInt, StrictStr

from ..commands.payloads import COMMAND_NAMES
from ..schema import StrictModel
from .values import (
    LOOPBACK,
    PIN_HINT,
    CameraDevice,
    ClassName,
    Commands,
    ConfigPath,
    CredentialName,
    DiscoveryPrefix,
    EdgeTpuDevice,
    Host,
    Listen,
    Names,
    Pin,
    StreamUrl,
    TopicPrefix,
    is_loopback,
    parse_listen,
)


def _allowed(text: str) -> dict[str, str]:
    return {"allowed": text}


def _hint(text: str) -> dict[str, str]:
    return {"hint": text}


# --- sections -------------------------------------------------------------------------------


class ModelConfig(StrictModel):
    """`[model]`: which bundle to run and how."""

    bundle: Annotated[
        ConfigPath,
        Field(
            json_schema_extra=_allowed("set it to a path (absolute, or relative to the config)")
        ),  # fmt: skip
    ]
    classes: Names = ()
    runtime: Literal["auto", "tflite_runtime", "ai_edge_litert", "tensorflow"] = "auto"
    num_threads: Annotated[
        StrictInt | None,
        Field(
            ge=0, le=64, json_schema_extra=_hint(" (0: one less than the number of cores, 1 to 4)")
        ),  # fmt: skip
        AfterValidator(lambda n: n or None),
    ] = None
    delegate: Annotated[
        Literal["none", "edgetpu"] | None, AfterValidator(lambda d: None if d == "none" else d)
    ] = None
    # Which Edge TPU: "usb", "pci", ":0", "usb:1"; None: the first found.
    device: EdgeTpuDevice = None

    @property
    def base_threads(self) -> int:
        """Threads for the base model: `num_threads`, or one less than the cores (1 to 4).

        The base model's thread pool splits each invoke evenly over its threads, so one thread
        that the camera, MQTT or the trainer keeps off its core stalls the whole invoke (on a
        2-core board, 2 threads measured several times slower than 1 once the daemon's other
        threads were busy). Leaving a core to them keeps the frame rate steady.
        """
        if self.num_threads:
            return self.num_threads
        return max(1, min(4, (os.cpu_count() or 1) - 1))


class PasswordSection(StrictModel):
    """A section whose password is read by .checks from its ``password_file`` or a systemd
    credential, never from the config file itself."""

    _password: SecretStr | None = PrivateAttr(None)
    _password_source: str = PrivateAttr("")

    @property
    def password(self) -> SecretStr | None:
        """The password (from ``password_file`` or the systemd credential), if any."""
        return self._password

    @property
    def password_source(self) -> str:
        """Where the password came from, for the log (never the password itself)."""
        return self._password_source

    def with_password(self, password: SecretStr | None, source: str) -> Self:
        """A copy that carries ``password``, read from ``source``."""
        copy = self.model_copy()
        copy._password, copy._password_source = password, source
        return copy


class CameraConfig(PasswordSection):
    """`[camera]`: where frames come from."""

    source: Literal["auto", "picamera2", "opencv", "replay", "stream"] = "auto"
    device: CameraDevice = "/dev/video0"
    path: ConfigPath = None
    width: Annotated[StrictInt, Field(ge=16, le=8192)] = 640
    height: Annotated[StrictInt, Field(ge=16, le=8192)] = 480
    fps: Annotated[float, Field(gt=0.0, le=1000.0)] = 10.0
    url: Annotated[
        StreamUrl | None,
        Field(
            description='Network camera (source = "stream"): the stream\'s URL, rtsp:// (H.264 '
            "or MJPEG) or http:// / https:// (MJPEG). No user name or password in it: those go "
            "in username and password_file. Use the camera's small substream (e.g. 640x360).",
            json_schema_extra=_allowed(
                'must be a stream URL in quotes, e.g. "rtsp://192.168.1.20:554/stream2"'
            ),
        ),
    ] = None
    rtsp_transport: Annotated[
        Literal["tcp", "udp"],
        Field(
            description='How RTSP carries the video: "tcp" (one connection, passes firewalls '
            'and NAT, no lost packets) or "udp" (less delay on a clean network, but lost '
            "packets show as broken frames)."
        ),
    ] = "tcp"
    username: Annotated[
        StrictStr,
        Field(description="Network camera: the user name to log in with (empty: no login)."),
    ] = ""
    password_file: Annotated[
        ConfigPath,
        Field(
            description="Network camera: a file holding the password (only the first line is "
            "read). Empty: the systemd credential named by password_credential, if any."
        ),
    ] = None
    password_credential: Annotated[
        CredentialName,
        Field(description="The systemd credential holding the camera's password."),
    ] = "camera_password"

    @property
    def explicit_size(self) -> tuple[int, int] | None:
        """(width, height) when the config sets them; None: the camera picks the smallest size
        that covers the model's input (the cheapest frames)."""
        if {"width", "height"} & self.model_fields_set:
            return self.width, self.height
        return None


class InferenceConfig(StrictModel):
    """`[inference]`: how often to classify and when a new class is announced."""

    rate: Annotated[
        float,
        Field(
            ge=0.0,
            le=1000.0,
            json_schema_extra=_hint(" (classifications per second; 0 = every frame)"),
        ),  # fmt: skip
    ] = 5.0
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6
    agree_frames: Annotated[StrictInt, Field(ge=1, le=1000)] = 3
    publish_interval: Annotated[
        float, Field(ge=0.0, le=86400.0, json_schema_extra=_hint(" seconds"))
    ] = 1.0
    # What a frame of none of the taught classes is called (predictions, cmd/classify, HA).
    unknown_label: ClassName = "unknown"


class TrainingConfig(StrictModel):
    """`[training]`: the background trainer."""

    epochs_per_cycle: Annotated[
        StrictInt, Field(ge=0, le=1_000_000, json_schema_extra=_hint(" (0 = until stopped)"))
    ] = 0
    min_epoch_interval: Annotated[
        float, Field(ge=0.0, le=3600.0, json_schema_extra=_hint(" seconds"))
    ] = 0.2
    autosave_interval: Annotated[
        float, Field(ge=1.0, le=86400.0, json_schema_extra=_hint(" seconds"))
    ] = 30.0
    auto_start: StrictBool = False
    imprint: StrictBool = True


class MqttConfig(PasswordSection):
    """`[mqtt]`: the broker connection and the topics."""

    host: Host = "localhost"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 1883
    topic_prefix: TopicPrefix = ""
    client_id: Annotated[
        StrictStr, AfterValidator(lambda v: v or f"personalizer-{socket.gethostname()}")
    ] = ""
    username: StrictStr = ""
    password_file: ConfigPath = None
    password_credential: CredentialName = "mqtt_password"
    tls: StrictBool = False
    ca: ConfigPath = None
    cert: ConfigPath = None
    key: ConfigPath = None
    qos: Annotated[StrictInt, Field(ge=0, le=2)] = 1
    keepalive: Annotated[StrictInt, Field(ge=5, le=3600, json_schema_extra=_hint(" seconds"))] = 60
    homeassistant_discovery: StrictBool = False
    discovery_prefix: DiscoveryPrefix = "homeassistant"
    max_payload_bytes: Annotated[StrictInt, Field(ge=1024, le=256 * 1024 * 1024)] = 2 * 1024 * 1024
    max_image_pixels: Annotated[StrictInt, Field(ge=1024, le=100_000_000)] = 4096 * 4096
    # The MQTT commands this daemon accepts; () makes it read-only (no command subscription).
    commands: Commands = COMMAND_NAMES


class StateConfig(StrictModel):
    """`[state]`: where samples and parameters are kept between runs."""

    dir: Annotated[ConfigPath, AfterValidator(lambda p: p or Path("/var/lib/personalizer"))] = Path(
        "/var/lib/personalizer"
    )
    # Keep a JPEG of each sample's model-input crop (10-20 KB): for thumbnails and to embed
    # the samples again when the bundle changes. false: no images leave the camera frame.
    store_images: StrictBool = True


class PinAssignment(StrictModel):
    """One class's button or LED: `{ class = "cup", pin = 17 }`."""

    class_name: Annotated[
        ClassName,
        Field(alias="class", json_schema_extra=_allowed("must be the name of one of the classes")),
    ]
    pin: Annotated[Pin, Field(json_schema_extra=_allowed(f"set it to {PIN_HINT}"))]


Assignments = Annotated[tuple[PinAssignment, ...], Field(strict=False)]


class GpioConfig(StrictModel):
    """`[gpio]`: buttons and LEDs through gpiozero."""

    enabled: StrictBool = False
    pin_factory: Literal["auto", "lgpio", "rpigpio", "mock"] = "auto"
    class_buttons: Annotated[
        Assignments,
        Field(
            json_schema_extra=_allowed(
                'must be [[gpio.class_buttons]] tables, each with class = "cup" and pin = 17'
            )
        ),  # fmt: skip
    ] = ()
    train_button: Pin | None = None
    reset_button: Pin | None = None
    pull_up: StrictBool = True
    bounce_time: Annotated[float, Field(ge=0.0, le=1.0, json_schema_extra=_hint(" (seconds)"))] = (
        0.05
    )
    hold_time: Annotated[float, Field(ge=0.5, le=30.0, json_schema_extra=_hint(" (seconds)"))] = 3.0
    class_leds: Annotated[
        Assignments,
        Field(
            json_schema_extra=_allowed(
                'must be [[gpio.class_leds]] tables, each with class = "cup" and pin = 17'
            )
        ),  # fmt: skip
    ] = ()
    status_led: Pin | None = None

    def pins(self) -> list[int | str]:
        """Every pin this configuration uses."""
        used = [a.pin for a in (*self.class_buttons, *self.class_leds)]
        used += [
            p for p in (self.train_button, self.reset_button, self.status_led) if p is not None
        ]
        return used


class WebConfig(PasswordSection):
    """`[web]`: the board's own web page (camera, scores, samples, training)."""

    enabled: StrictBool = False
    listen: Listen = "0.0.0.0:8080"
    password_file: ConfigPath = None
    password_credential: CredentialName = "web_password"
    tls_cert: ConfigPath = None
    tls_key: ConfigPath = None

    @property
    def tls(self) -> bool:
        """True when the page is served over HTTPS (`tls_cert` and `tls_key`)."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def bind(self) -> tuple[str, int]:
        """Where the server listens: `listen`, or loopback only while no password is set."""
        host, port = parse_listen(self.listen)
        if self.password is None and not is_loopback(host):
            return LOOPBACK, port
        return host, port

    @property
    def url(self) -> str | None:
        """The page's address for people and Home Assistant (`configuration_url`), or None
        when the page is off. A wildcard `listen` (0.0.0.0, ::) gives the board's host name."""
        if not self.enabled:
            return None
        host, port = self.bind
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{port}/"


SECTIONS: dict[str, type[StrictModel]] = {
    "model": ModelConfig,
    "camera": CameraConfig,
    "inference": InferenceConfig,
    "training": TrainingConfig,
    "mqtt": MqttConfig,
    "state": StateConfig,
    "gpio": GpioConfig,
    "web": WebConfig,
}
