"""The daemon's configuration: one TOML file parsed once into frozen dataclasses.

Every problem is collected (not just the first) and reported with its key path, the value found
and what is allowed, so one run of `personalizer check-config` shows everything to fix. Relative
paths are taken relative to the folder of the config file. The rest of the daemon only ever sees
the typed objects below, never raw dicts.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import socket
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import COMMAND_NAMES

CAMERA_SOURCES = ("auto", "picamera2", "opencv", "replay")
RUNTIMES = ("auto", "tflite_runtime", "ai_edge_litert", "tensorflow")
DELEGATES = ("none", "edgetpu")
MAX_CLASS_NAME_LENGTH = 64

_MISSING = object()


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself; call this only where it is handed to the broker client."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ModelConfig:
    """`[model]`: which bundle to run and how."""

    bundle: Path
    classes: tuple[str, ...]
    runtime: str = "auto"
    num_threads: int | None = None
    delegate: str | None = None
    device: str | None = None  # which Edge TPU: "usb", "pci", ":0", "usb:1"; None: the first

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


@dataclass(frozen=True)
class CameraConfig:
    """`[camera]`: where frames come from."""

    source: str = "auto"
    device: str = "/dev/video0"
    path: Path | None = None
    width: int = 640
    height: int = 480
    fps: float = 10.0


@dataclass(frozen=True)
class InferenceConfig:
    """`[inference]`: how often to classify and when a new class is announced."""

    rate: float = 5.0
    min_confidence: float = 0.6
    agree_frames: int = 3
    publish_interval: float = 1.0


@dataclass(frozen=True)
class TrainingConfig:
    """`[training]`: the background trainer."""

    epochs_per_cycle: int = 0
    min_epoch_interval: float = 0.2
    autosave_interval: float = 30.0
    auto_start: bool = False
    imprint: bool = True


@dataclass(frozen=True)
class MqttConfig:
    """`[mqtt]`: the broker connection and the topics."""

    host: str = "localhost"
    port: int = 1883
    topic_prefix: str = ""
    client_id: str = ""
    username: str = ""
    password: Secret | None = field(default=None, repr=False)
    password_source: str = ""
    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    qos: int = 1
    keepalive: int = 60
    homeassistant_discovery: bool = False
    discovery_prefix: str = "homeassistant"
    max_payload_bytes: int = 2 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    # The MQTT commands this daemon accepts; () makes it read-only (no command subscription).
    commands: tuple[str, ...] = COMMAND_NAMES


@dataclass(frozen=True)
class StateConfig:
    """`[state]`: where samples and parameters are kept between runs."""

    dir: Path = Path("/var/lib/personalizer")


@dataclass(frozen=True)
class PinAssignment:
    """One class's button or LED: `{ class = "cup", pin = 17 }`."""

    class_name: str
    pin: int | str


@dataclass(frozen=True)
class GpioConfig:
    """`[gpio]`: buttons and LEDs through gpiozero."""

    enabled: bool = False
    pin_factory: str = "auto"
    class_buttons: tuple[PinAssignment, ...] = ()
    train_button: int | str | None = None
    reset_button: int | str | None = None
    pull_up: bool = True
    bounce_time: float = 0.05
    hold_time: float = 3.0
    class_leds: tuple[PinAssignment, ...] = ()
    status_led: int | str | None = None

    def pins(self) -> list[int | str]:
        """Every pin this configuration uses."""
        used = [a.pin for a in (*self.class_buttons, *self.class_leds)]
        used += [
            p for p in (self.train_button, self.reset_button, self.status_led) if p is not None
        ]
        return used


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    source: Path
    model: ModelConfig
    camera: CameraConfig
    inference: InferenceConfig
    training: TrainingConfig
    mqtt: MqttConfig
    state: StateConfig
    gpio: GpioConfig

    def summary(self) -> str:
        """One line that says what this configuration will do."""
        classes = ",".join(self.model.classes) if self.model.classes else "from bundle"
        camera = self.camera.source
        if self.camera.source in ("replay", "auto") and self.camera.path is not None:
            camera += f" ({self.camera.path})"
        elif self.camera.source == "opencv":
            camera += f" ({self.camera.device})"
        return (
            f"config OK: bundle {self.model.bundle} classes [{classes}], camera {camera} "
            f"{self.camera.width}x{self.camera.height}@{self.camera.fps:g}fps, "
            f"mqtt {self.mqtt.host}:{self.mqtt.port} topic {self.mqtt.topic_prefix}, "
            f"state {self.state.dir}"
        )


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration: where, what was found, what is allowed."""

    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.value is _MISSING:
            return f"{self.key}: missing; {self.allowed}"
        return f"{self.key} = {_show(self.value)}: {self.allowed}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason."""

    def __init__(self, source: Path | str, problems: list[ConfigProblem]) -> None:
        self.source = Path(source)
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s) in the configuration:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{table}"
    if isinstance(value, list):
        return json.dumps(value)
    return repr(value)


class _Section:
    """Reads the keys of one TOML table, recording problems instead of raising."""

    def __init__(self, name: str, table: Any, problems: list[ConfigProblem], base: Path) -> None:
        self.name = name
        self.problems = problems
        self.base = base
        self.read: list[str] = []
        if table is _MISSING:
            table = {}
        if not isinstance(table, dict):
            self.problem("", table, f"must be a table ([{name}])")
            table = {}
        self.table: dict[str, Any] = table

    def problem(self, key: str, value: Any, allowed: str) -> None:
        path = f"{self.name}.{key}" if key else self.name
        self.problems.append(ConfigProblem(path, value, allowed))

    def _get(self, key: str) -> Any:
        self.read.append(key)
        return self.table.get(key, _MISSING)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, value, "must be true or false (no quotes)")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int, hint: str = "") -> int:
        value = self._get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, value, f"must be a whole number from {low} to {high}{hint}")
            return default
        return value

    def number(
        self,
        key: str,
        default: float,
        low: float,
        high: float,
        hint: str = "",
        low_open: bool = False,
    ) -> float:
        value = self._get(key)
        if value is _MISSING:
            return default
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value_f = float(value)
            ok = math.isfinite(value_f) and value_f <= high
            ok = ok and (value_f > low if low_open else value_f >= low)
        if not ok:
            bound = f"greater than {low:g}" if low_open else f"from {low:g}"
            self.problem(key, value, f"must be a number {bound} up to {high:g}{hint}")
            return default
        return float(value)

    def string(
        self, key: str, default: str, check: Callable[[str], str | None] | None = None
    ) -> str:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.problem(key, value, 'must be a string in quotes, e.g. "text"')
            return default
        if check is not None:
            reason = check(value)
            if reason:
                self.problem(key, value, reason)
                return default
        return value

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        value = self._get(key)
        if value is _MISSING:
            return default
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            self.problem(key, value, f"must be one of {listed}")
            return default
        return value

    def path(self, key: str, required: bool = False) -> Path | None:
        value = self._get(key)
        if value is _MISSING or value == "":
            if required:
                self.problem(
                    key, _MISSING, "set it to a path (absolute, or relative to the config)"
                )
            return None
        if not isinstance(value, str):
            self.problem(key, value, "must be a path in quotes")
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base / path)

    def strings(self, key: str, check: Callable[[str], str | None]) -> tuple[str, ...]:
        value = self._get(key)
        if value is _MISSING:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, value, 'must be a list of strings, e.g. ["cup", "pen"]')
            return ()
        for item in value:
            reason = check(item)
            if reason:
                self.problem(key, value, f"{_show(item)} {reason}")
                return ()
        return tuple(value)

    def finish(self) -> None:
        """Report every key of the table that no reader asked for."""
        for key, value in self.table.items():
            if key in self.read:
                continue
            close = difflib.get_close_matches(key, self.read, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            allowed = ", ".join(self.read)
            self.problem(key, value, f"unknown key{hint}; [{self.name}] allows: {allowed}")


def _class_name_problem(name: str) -> str | None:
    if not name.strip() or name != name.strip():
        return "is not a usable class name: no empty names or leading/trailing spaces"
    if len(name) > MAX_CLASS_NAME_LENGTH:
        return f"is longer than {MAX_CLASS_NAME_LENGTH} characters"
    if any(ord(ch) < 32 for ch in name):
        return "contains control characters"
    return None


def _topic_prefix_problem(prefix: str) -> str | None:
    if prefix == "":
        return None
    if any(ch in prefix for ch in "+#\0"):
        return "must not contain the MQTT wildcards + or # (or NUL)"
    if prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        return 'must be topic levels separated by single "/", e.g. "personalizer/kitchen"'
    if prefix.startswith("$"):
        return 'must not start with "$" (reserved for the broker)'
    return None


def _discovery_prefix_problem(prefix: str) -> str | None:
    if not prefix:
        return 'must not be empty (Home Assistant uses "homeassistant")'
    return _topic_prefix_problem(prefix)


def _host_problem(host: str) -> str | None:
    if not host or any(ch.isspace() for ch in host):
        return 'must be a host name or address, e.g. "localhost" or "192.168.1.10"'
    return None


def default_topic_prefix() -> str:
    """`personalizer/<hostname>`, the documented default root topic."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "board"
    return f"personalizer/{host}"


def _read_secret_file(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.rstrip("\r\n")


def _secret_or_none(text: str) -> Secret | None:
    # scripts/install.sh creates the credential file empty when the broker needs no password:
    # an empty file means "no password", not an empty one.
    return Secret(text) if text else None


def _read_model(section: _Section) -> ModelConfig:
    bundle = section.path("bundle", required=True)
    classes = section.strings("classes", _class_name_problem)
    if len(set(classes)) != len(classes):
        section.problem("classes", list(classes), "class names must be unique")
    runtime = section.choice("runtime", "auto", RUNTIMES)
    threads = section.integer(
        "num_threads", 0, 0, 64, " (0: one less than the number of cores, 1 to 4)"
    )
    delegate = section.choice("delegate", "none", DELEGATES)
    device = section.string("device", "", _edgetpu_device_problem)
    section.finish()
    if device and delegate != "edgetpu":
        section.problem("device", device, 'applies to delegate = "edgetpu" only; remove it')
    if bundle is not None:
        classes = _check_bundle(section, bundle, classes)
    return ModelConfig(
        bundle=bundle or Path(),
        classes=classes,
        runtime=runtime,
        num_threads=threads or None,
        delegate=None if delegate == "none" else delegate,
        device=device or None,
    )


def _edgetpu_device_problem(device: str) -> str | None:
    if re.fullmatch(r"(usb|pci)?(:\d+)?", device) and device:
        return None
    return 'must name an Edge TPU: "usb", "pci", ":0" (the first), "usb:1", "pci:0"'


def _read_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest.json, from a folder or a .zip (with or without a top folder)."""
    if bundle.is_dir():
        return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    with zipfile.ZipFile(bundle) as archive:
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "manifest.json"]
        if not names:
            raise FileNotFoundError("no manifest.json inside the .zip")
        return json.loads(archive.read(min(names, key=len)))


def _check_bundle(section: _Section, bundle: Path, classes: tuple[str, ...]) -> tuple[str, ...]:
    """Light check that the bundle is there and matches `classes` (the runtime checks hashes)."""
    if not bundle.exists():
        section.problem(
            "bundle", str(bundle), "no such file or folder; point it at a bundle folder or .zip"
        )
        return classes
    try:
        manifest = _read_manifest(bundle)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        section.problem(
            "bundle",
            str(bundle),
            f"not a readable bundle (manifest.json: {exc}); use tflite-transfer-convert",
        )
        return classes
    if not isinstance(manifest, dict) or manifest.get("format") != "tflite-transfer-bundle":
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        section.problem(
            "bundle",
            str(bundle),
            f"manifest.json: format is {_show(found)}, not a tflite-transfer-bundle; "
            "use tflite-transfer-convert",
        )
        return classes
    num_classes = manifest.get("num_classes")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        section.problem(
            "bundle",
            str(bundle),
            f"manifest.json: num_classes is {_show(num_classes)}, not a whole number of 1 or "
            "more; convert the bundle again",
        )
        return classes
    if classes and len(classes) != num_classes:
        section.problem(
            "classes",
            list(classes),
            f"the bundle was converted for {num_classes} classes; list exactly {num_classes} "
            "names or convert a bundle with --num_classes",
        )
    if not classes:
        names = manifest.get("class_names")
        if isinstance(names, list) and len(names) == num_classes:
            classes = tuple(str(n) for n in names)
        else:
            classes = tuple(f"class_{i}" for i in range(num_classes))
    return classes


def _read_camera(section: _Section) -> CameraConfig:
    source = section.choice("source", "auto", CAMERA_SOURCES)
    device_raw = section._get("device")
    device = "/dev/video0"
    if device_raw is not _MISSING:
        if isinstance(device_raw, bool) or not isinstance(device_raw, int | str):
            section.problem("device", device_raw, 'must be a device path like "/dev/video0" or 0')
        elif isinstance(device_raw, int) and device_raw < 0:
            section.problem("device", device_raw, "must be a camera index of 0 or more")
        else:
            device = str(device_raw)
    path = section.path("path")
    width = section.integer("width", 640, 16, 8192)
    height = section.integer("height", 480, 16, 8192)
    fps = section.number("fps", 10.0, 0.0, 1000.0, low_open=True)
    section.finish()
    if source == "replay":
        if path is None:
            section.problem(
                "path", _MISSING, 'source = "replay" needs a folder of images or a video'
            )
    if path is not None and not path.exists():
        section.problem(
            "path", str(path), "no such file or folder; give a folder of JPEG/PNG or a video file"
        )
    return CameraConfig(source, device, path, width, height, fps)


def _read_inference(section: _Section) -> InferenceConfig:
    rate = section.number(
        "rate", 5.0, 0.0, 1000.0, " (classifications per second; 0 = every frame)"
    )
    conf = section.number("min_confidence", 0.6, 0.0, 1.0)
    agree = section.integer("agree_frames", 3, 1, 1000)
    interval = section.number("publish_interval", 1.0, 0.0, 86400.0, " seconds")
    section.finish()
    return InferenceConfig(rate, conf, agree, interval)


def _read_training(section: _Section) -> TrainingConfig:
    epochs = section.integer("epochs_per_cycle", 0, 0, 1_000_000, " (0 = until stopped)")
    pace = section.number("min_epoch_interval", 0.2, 0.0, 3600.0, " seconds")
    autosave = section.number("autosave_interval", 30.0, 1.0, 86400.0, " seconds")
    auto_start = section.boolean("auto_start", False)
    imprint = section.boolean("imprint", True)
    section.finish()
    return TrainingConfig(epochs, pace, autosave, auto_start, imprint)


def _read_commands(section: _Section) -> tuple[str, ...]:
    """`mqtt.commands`: true (every command), false (none: read-only) or a list of names."""
    value = section._get("commands")
    if value is _MISSING or value is True:
        return COMMAND_NAMES
    if value is False:
        return ()
    names = ", ".join(f'"{name}"' for name in COMMAND_NAMES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        section.problem("commands", value, f"must be true (all), false (none) or a list of {names}")
        return COMMAND_NAMES
    unknown = [v for v in value if v not in COMMAND_NAMES]
    if unknown:
        section.problem("commands", value, f"{_show(unknown[0])} is not a command; use {names}")
        return COMMAND_NAMES
    return tuple(dict.fromkeys(value))


def _read_mqtt(section: _Section, environ: dict[str, str]) -> MqttConfig:
    host = section.string("host", "localhost", _host_problem)
    port = section.integer("port", 1883, 1, 65535)
    prefix = section.string("topic_prefix", "", _topic_prefix_problem) or default_topic_prefix()
    client_id = section.string("client_id", "") or f"personalizer-{socket.gethostname()}"
    username = section.string("username", "")
    password_file = section.path("password_file")
    credential = section.string(
        "password_credential",
        "mqtt_password",
        lambda v: None if re.fullmatch(r"[A-Za-z0-9_.@-]+", v) else "must be a credential name",
    )
    tls = section.boolean("tls", False)
    ca = section.path("ca")
    cert = section.path("cert")
    key = section.path("key")
    qos = section.integer("qos", 1, 0, 2)
    keepalive = section.integer("keepalive", 60, 5, 3600, " seconds")
    discovery = section.boolean("homeassistant_discovery", False)
    discovery_prefix = section.string(
        "discovery_prefix", "homeassistant", _discovery_prefix_problem
    )
    max_payload = section.integer("max_payload_bytes", 2 * 1024 * 1024, 1024, 256 * 1024 * 1024)
    max_pixels = section.integer("max_image_pixels", 4096 * 4096, 1024, 100_000_000)
    commands = _read_commands(section)
    section.finish()

    password: Secret | None = None
    password_source = ""
    if password_file is not None:
        try:
            password = _secret_or_none(_read_secret_file(password_file))
            password_source = f"file {password_file}" if password else ""
        except OSError as exc:
            section.problem(
                "password_file",
                str(password_file),
                f"cannot be read ({exc.strerror or exc}); make it readable by the daemon's user "
                "or use a systemd credential instead",
            )
    elif environ.get("CREDENTIALS_DIRECTORY"):
        cred_path = Path(environ["CREDENTIALS_DIRECTORY"]) / credential
        if cred_path.is_file():
            try:
                password = _secret_or_none(_read_secret_file(cred_path))
                password_source = f"systemd credential {credential}" if password else ""
            except OSError as exc:
                section.problem(
                    "password_credential", credential, f"cannot be read ({exc.strerror or exc})"
                )
    if password is not None and not username:
        section.problem("username", "", "a password is set, so set the user name it belongs to")

    for name, value in (("ca", ca), ("cert", cert), ("key", key)):
        if value is not None and not value.is_file():
            section.problem(name, str(value), "no such file; give the PEM file's path")
    if (cert is None) != (key is None):
        section.problem(
            "cert" if cert is None else "key",
            _MISSING,
            "client certificates need both cert and key",
        )
    tls = tls or ca is not None or cert is not None
    return MqttConfig(
        host=host,
        port=port,
        topic_prefix=prefix,
        client_id=client_id,
        username=username,
        password=password,
        password_source=password_source,
        tls=tls,
        ca=ca,
        cert=cert,
        key=key,
        qos=qos,
        keepalive=keepalive,
        homeassistant_discovery=discovery,
        discovery_prefix=discovery_prefix,
        max_payload_bytes=max_payload,
        max_image_pixels=max_pixels,
        commands=commands,
    )


def _read_state(section: _Section) -> StateConfig:
    directory = section.path("dir") or Path("/var/lib/personalizer")
    section.finish()
    if directory.exists() and not directory.is_dir():
        section.problem("dir", str(directory), "exists and is not a folder; choose a folder")
    elif directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
        section.problem(
            "dir", str(directory), "is not writable by this user; fix its owner or choose another"
        )
    return StateConfig(directory)


PIN_HINT = 'a BCM GPIO number (e.g. 17) or a gpiozero pin name (e.g. "GPIO17", "BOARD11")'
PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "mock")


def _pin_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return f"must be {PIN_HINT}"
    if isinstance(value, int):
        return None if 0 <= value <= 53 else f"must be {PIN_HINT}; GPIO numbers go from 0 to 53"
    if isinstance(value, str) and value.strip() and value == value.strip() and len(value) <= 20:
        return None
    return f"must be {PIN_HINT}"


def pin_key(pin: int | str) -> str:
    """One spelling per pin, so 17, "GPIO17" and "BCM17" count as the same pin."""
    match = re.fullmatch(r"(?:GPIO|BCM)?(\d+)", str(pin).upper())
    return f"GPIO{int(match.group(1))}" if match else str(pin).upper()


def _read_pin(section: _Section, key: str) -> int | str | None:
    value = section._get(key)
    if value is _MISSING:
        return None
    reason = _pin_problem(value)
    if reason:
        section.problem(key, value, reason)
        return None
    return value


def _read_assignments(section: _Section, key: str, what: str) -> tuple[PinAssignment, ...]:
    value = section._get(key)
    if value is _MISSING:
        return ()
    example = f'[[gpio.{key}]] tables, each with class = "cup" and pin = 17'
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        section.problem(key, value, f"must be {example}")
        return ()
    out = []
    for index, entry in enumerate(value):
        where = f"{key}[{index}]"
        unknown = sorted(set(entry) - {"class", "pin"})
        if unknown:
            section.problem(
                f"{where}.{unknown[0]}",
                entry[unknown[0]],
                f"unknown key; each {what} has only class and pin",
            )
        name = entry.get("class", _MISSING)
        if name is _MISSING or not isinstance(name, str) or _class_name_problem(name):
            section.problem(f"{where}.class", name, "must be the name of one of the classes")
            continue
        pin = entry.get("pin", _MISSING)
        reason = "missing" if pin is _MISSING else _pin_problem(pin)
        if reason:
            section.problem(
                f"{where}.pin", pin, reason if pin is not _MISSING else f"set it to {PIN_HINT}"
            )
            continue
        out.append(PinAssignment(name, pin))
    names = [a.class_name for a in out]
    for name in sorted({n for n in names if names.count(n) > 1}):
        section.problem(key, name, f"class {name!r} has more than one {what}")
    return tuple(out)


def _read_gpio(section: _Section, classes: tuple[str, ...]) -> GpioConfig:
    enabled = section.boolean("enabled", False)
    factory = section.choice("pin_factory", "auto", PIN_FACTORIES)
    buttons = _read_assignments(section, "class_buttons", "button")
    train = _read_pin(section, "train_button")
    reset = _read_pin(section, "reset_button")
    pull_up = section.boolean("pull_up", True)
    bounce = section.number("bounce_time", 0.05, 0.0, 1.0, " (seconds)")
    hold = section.number("hold_time", 3.0, 0.5, 30.0, " (seconds)")
    leds = _read_assignments(section, "class_leds", "LED")
    status_led = _read_pin(section, "status_led")
    section.finish()
    config = GpioConfig(
        enabled, factory, buttons, train, reset, pull_up, bounce, hold, leds, status_led
    )
    keys = [pin_key(p) for p in config.pins()]
    for pin in sorted({k for k in keys if keys.count(k) > 1}):
        section.problem(
            "", pin, f"pin {pin} is assigned twice; give each button and LED its own pin"
        )
    if classes:
        for key, entries in (("class_buttons", buttons), ("class_leds", leds)):
            for entry in entries:
                if entry.class_name not in classes:
                    section.problem(
                        f"{key}",
                        entry.class_name,
                        f"is not one of [model] classes: {', '.join(classes)}",
                    )
    if enabled and not keys:
        section.problem(
            "enabled",
            True,
            "no button or LED is configured: add [[gpio.class_buttons]] or set enabled = false",
        )
    return config


SECTIONS = ("model", "camera", "inference", "training", "mqtt", "state", "gpio")


def parse_config(
    document: dict[str, Any], source: Path, environ: dict[str, str] | None = None
) -> Config:
    """Validate an already parsed TOML document; raises ConfigError listing every problem."""
    environ = dict(os.environ) if environ is None else environ
    problems: list[ConfigProblem] = []
    base = source.parent.resolve()

    def section(name: str) -> _Section:
        return _Section(name, document.get(name, _MISSING), problems, base)

    if "model" not in document:
        problems.append(ConfigProblem("model", _MISSING, "add a [model] table with bundle = ..."))
    model = _read_model(section("model"))
    camera = _read_camera(section("camera"))
    inference = _read_inference(section("inference"))
    training = _read_training(section("training"))
    mqtt = _read_mqtt(section("mqtt"), environ)
    state = _read_state(section("state"))
    gpio = _read_gpio(section("gpio"), model.classes)
    for key, value in document.items():
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1)
            hint = f' (did you mean "[{close[0]}]"?)' if close else ""
            problems.append(
                ConfigProblem(key, value, f"unknown section{hint}; allowed: {', '.join(SECTIONS)}")
            )
    if problems:
        raise ConfigError(source, problems)
    return Config(source, model, camera, inference, training, mqtt, state, gpio)


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read and validate the TOML file at `path`; raises ConfigError listing every problem."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            source, [ConfigProblem("--config", str(source), "no such file; give the TOML file")]
        ) from None
    except OSError as exc:
        raise ConfigError(
            source, [ConfigProblem("--config", str(source), f"cannot be read ({exc.strerror})")]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            source, [ConfigProblem("(file)", str(source), f"is not valid TOML: {exc}")]
        ) from None
    return parse_config(document, source, environ)
