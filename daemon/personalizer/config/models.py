"""The configuration's sections as typed models: every key, its default and its range, once.

A section is a frozen pydantic model that forbids unknown keys. Values are checked for type and
range here; what needs the file system or another section (the bundle's manifest, password
files, pins against classes) is checked in :mod:`.checks`. Relative paths are taken relative to
the config file's folder, which validation receives as ``context={"base": folder}``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
)

from ..commands.payloads import COMMAND_NAMES
from ..schema import StrictModel

MAX_CLASS_NAME_LENGTH = 64
CAMERA_SOURCES = ("auto", "picamera2", "opencv", "replay")
RUNTIMES = ("auto", "tflite_runtime", "ai_edge_litert", "tensorflow")
PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "mock")
PIN_HINT = 'a BCM GPIO number (e.g. 17) or a gpiozero pin name (e.g. "GPIO17", "BOARD11")'


def _allowed(text: str) -> dict[str, str]:
    return {"allowed": text}


def _hint(text: str) -> dict[str, str]:
    return {"hint": text}


# --- value types ----------------------------------------------------------------------------


def _path(value: Any, info: ValidationInfo) -> Path | None:
    if value is None or value == "":
        return None
    if isinstance(value, PurePath):
        path = Path(value)
    elif isinstance(value, str):
        path = Path(value).expanduser()
    else:
        raise ValueError("must be a path in quotes")
    base = (info.context or {}).get("base")
    return path if path.is_absolute() or base is None else Path(base) / path


ConfigPath = Annotated[Path | None, BeforeValidator(_path)]


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class name, or None."""
    if not name.strip() or name != name.strip():
        return "is not a usable class name: no empty names or leading/trailing spaces"
    if len(name) > MAX_CLASS_NAME_LENGTH:
        return f"is longer than {MAX_CLASS_NAME_LENGTH} characters"
    if any(ord(ch) < 32 for ch in name):
        return "contains control characters"
    return None


def _class_name(name: str) -> str:
    reason = class_name_problem(name)
    if reason:
        raise ValueError(f"{json.dumps(name)} {reason}")
    return name


ClassName = Annotated[StrictStr, AfterValidator(_class_name)]


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    return names


def topic_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a topic root, or None."""
    if any(ch in prefix for ch in "+#\0"):
        return "must not contain the MQTT wildcards + or # (or NUL)"
    if prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        return 'must be topic levels separated by single "/", e.g. "personalizer/kitchen"'
    if prefix.startswith("$"):
        return 'must not start with "$" (reserved for the broker)'
    return None


def default_topic_prefix() -> str:
    """`personalizer/<hostname>`, the documented default root topic."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "board"
    return f"personalizer/{host}"


def _topic_prefix(prefix: str) -> str:
    if prefix == "":
        return default_topic_prefix()
    reason = topic_prefix_problem(prefix)
    if reason:
        raise ValueError(reason)
    return prefix


def _discovery_prefix(prefix: str) -> str:
    if not prefix:
        raise ValueError('must not be empty (Home Assistant uses "homeassistant")')
    reason = topic_prefix_problem(prefix)
    if reason:
        raise ValueError(reason)
    return prefix


def _host(host: str) -> str:
    if not host or any(ch.isspace() for ch in host):
        raise ValueError('must be a host name or address, e.g. "localhost" or "192.168.1.10"')
    return host


def _credential_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", name):
        raise ValueError("must be a credential name (letters, digits, _ . @ -)")
    return name


def _edgetpu_device(device: str | None) -> str | None:
    if device is None or (device and re.fullmatch(r"(usb|pci)?(:\d+)?", device)):
        return device
    raise ValueError('must name an Edge TPU: "usb", "pci", ":0" (the first), "usb:1", "pci:0"')


def _commands(value: Any) -> tuple[str, ...]:
    names = ", ".join(f'"{name}"' for name in COMMAND_NAMES)
    if value is True:
        return COMMAND_NAMES
    if value is False:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be true (all), false (none) or a list of {names}")
    unknown = [v for v in value if v not in COMMAND_NAMES]
    if unknown:
        raise ValueError(f"{json.dumps(unknown[0])} is not a command; use {names}")
    return tuple(dict.fromkeys(value))


def _camera_device(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('must be a device path like "/dev/video0" or 0')
    if isinstance(value, int) and value < 0:
        raise ValueError("must be a camera index of 0 or more")
    return str(value)


def _pin(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"must be {PIN_HINT}")
    if isinstance(value, int):
        if 0 <= value <= 53:
            return value
        raise ValueError(f"must be {PIN_HINT}; GPIO numbers go from 0 to 53")
    if isinstance(value, str) and value.strip() and value == value.strip() and len(value) <= 20:
        return value
    raise ValueError(f"must be {PIN_HINT}")


def pin_key(pin: int | str) -> str:
    """One spelling per pin, so 17, "GPIO17" and "BCM17" count as the same pin."""
    match = re.fullmatch(r"(?:GPIO|BCM)?(\d+)", str(pin).upper())
    return f"GPIO{int(match.group(1))}" if match else str(pin).upper()


Pin = Annotated[int | str, BeforeValidator(_pin)]
Names = Annotated[tuple[ClassName, ...], Field(strict=False), AfterValidator(_unique)]


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
    device: Annotated[StrictStr | None, AfterValidator(_edgetpu_device)] = None

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


class CameraConfig(StrictModel):
    """`[camera]`: where frames come from."""

    source: Literal["auto", "picamera2", "opencv", "replay"] = "auto"
    device: Annotated[str, BeforeValidator(_camera_device)] = "/dev/video0"
    path: ConfigPath = None
    width: Annotated[StrictInt, Field(ge=16, le=8192)] = 640
    height: Annotated[StrictInt, Field(ge=16, le=8192)] = 480
    fps: Annotated[float, Field(gt=0.0, le=1000.0)] = 10.0

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


class MqttConfig(PasswordSection):
    """`[mqtt]`: the broker connection and the topics."""

    host: Annotated[StrictStr, AfterValidator(_host)] = "localhost"
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 1883
    topic_prefix: Annotated[StrictStr, AfterValidator(_topic_prefix)] = ""
    client_id: Annotated[
        StrictStr, AfterValidator(lambda v: v or f"personalizer-{socket.gethostname()}")
    ] = ""
    username: StrictStr = ""
    password_file: ConfigPath = None
    password_credential: Annotated[StrictStr, AfterValidator(_credential_name)] = "mqtt_password"
    tls: StrictBool = False
    ca: ConfigPath = None
    cert: ConfigPath = None
    key: ConfigPath = None
    qos: Annotated[StrictInt, Field(ge=0, le=2)] = 1
    keepalive: Annotated[StrictInt, Field(ge=5, le=3600, json_schema_extra=_hint(" seconds"))] = 60
    homeassistant_discovery: StrictBool = False
    discovery_prefix: Annotated[StrictStr, AfterValidator(_discovery_prefix)] = "homeassistant"
    max_payload_bytes: Annotated[StrictInt, Field(ge=1024, le=256 * 1024 * 1024)] = 2 * 1024 * 1024
    max_image_pixels: Annotated[StrictInt, Field(ge=1024, le=100_000_000)] = 4096 * 4096
    # The MQTT commands this daemon accepts; () makes it read-only (no command subscription).
    commands: Annotated[tuple[str, ...], BeforeValidator(_commands)] = COMMAND_NAMES


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


SECTIONS: dict[str, type[StrictModel]] = {
    "model": ModelConfig,
    "camera": CameraConfig,
    "inference": InferenceConfig,
    "training": TrainingConfig,
    "mqtt": MqttConfig,
    "state": StateConfig,
    "gpio": GpioConfig,
}


# --- [web] ----------------------------------------------------------------------------------

LOOPBACK = "127.0.0.1"
_LISTEN_HINT = 'must be "HOST:PORT", e.g. "0.0.0.0:8080", "127.0.0.1:8080" or "[::]:8080"'


def parse_listen(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (IPv6 in brackets) as ``(host, port)``; ValueError saying what is allowed."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", value)
    if match is None:
        raise ValueError(_LISTEN_HINT)
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"{_LISTEN_HINT}; the port goes from 1 to 65535")
    if match.group(1) is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{_LISTEN_HINT}; [{host}] is not an IPv6 address") from None
    return host, port


def _listen(value: str) -> str:
    parse_listen(value)
    return value


class WebConfig(PasswordSection):
    """`[web]`: the board's own web page (camera, scores, samples, training)."""

    enabled: StrictBool = False
    listen: Annotated[StrictStr, AfterValidator(_listen)] = "0.0.0.0:8080"
    password_file: ConfigPath = None
    password_credential: Annotated[StrictStr, AfterValidator(_credential_name)] = "web_password"
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
        if self.password is None and not _is_loopback(host):
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SECTIONS["web"] = WebConfig
