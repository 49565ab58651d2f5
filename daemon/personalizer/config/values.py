"""The configuration's value types: paths, class names, topics, pins, commands, listen addresses.

Each is a pydantic annotated type or a plain check whose ValueError says what is allowed; the
sections in :mod:`.models` are built from them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path, PurePath
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, StrictStr, ValidationInfo

from ..class_names import class_name_problem
from ..commands.payloads import COMMAND_NAMES

PIN_HINT = 'a BCM GPIO number (e.g. 17) or a gpiozero pin name (e.g. "GPIO17", "BOARD11")'


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


FLEET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def fleet_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a fleet group or board (each is one level of a topic), or None."""
    if not FLEET_NAME.fullmatch(name):
        return (
            "must be 1 to 64 letters, digits, _ . or - (starting with a letter or digit): it is "
            "one level of the fleet's topics"
        )
    return None


def _fleet_name(name: str) -> str:
    reason = fleet_name_problem(name) if name else None
    if reason:
        raise ValueError(reason)
    return name


INSTANCE_ENV = "PERSONALIZER_INSTANCE"  # set by the template unit personalizer@NAME.service


def instance_problem(name: str) -> str | None:
    """Why ``name`` cannot be an instance name (it becomes a topic level and a file name)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", name):
        return "must be 1 to 32 letters, digits, _ or - (starting with a letter or digit)"
    return None


def _host_name() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "board"


def default_topic_prefix(instance: str = "") -> str:
    """`personalizer/<hostname>`, or `personalizer/<hostname>/<instance>` for an instance of
    the template unit: the documented default root topic."""
    return f"personalizer/{_host_name()}" + (f"/{instance}" if instance else "")


def default_client_id(instance: str = "") -> str:
    """`personalizer-<hostname>` (with `-<instance>` for an instance): unique on the broker."""
    return f"personalizer-{socket.gethostname()}" + (f"-{instance}" if instance else "")


def instance_of(info: ValidationInfo) -> str:
    """The instance name validation was given (parse_config reads it from the environment)."""
    return str((info.context or {}).get("instance", ""))


def _topic_prefix(prefix: str, info: ValidationInfo) -> str:
    if prefix == "":
        return default_topic_prefix(instance_of(info))
    reason = topic_prefix_problem(prefix)
    if reason:
        raise ValueError(reason)
    return prefix


def _fleet_prefix(prefix: str) -> str:
    if not prefix:
        raise ValueError('must not be empty (the default is "personalizer-fleet")')
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


STREAM_SCHEMES = ("rtsp", "http", "https")
PYAV_INSTALL = "pip install av (or pip install 'tflite-personalizer[stream]')"  # decodes streams
_CREDENTIALS_HINT = (
    "put the user name in camera.username and the password in the file named by "
    "camera.password_file (or the systemd credential camera_password), never in the URL"
)


def _stream_url(url: str) -> str | None:
    if url == "":
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f'is not a URL ({exc}); e.g. "rtsp://192.168.1.20:554/stream2"') from None
    if parts.scheme.lower() not in STREAM_SCHEMES:
        scheme = f"{parts.scheme}://" if parts.scheme else "(none)"
        raise ValueError(
            f"the scheme {scheme} is not supported; use rtsp:// (RTSP, H.264 or MJPEG) or "
            "http:// / https:// (MJPEG, multipart/x-mixed-replace)"
        )
    if not parts.hostname:
        raise ValueError('names no host; e.g. "rtsp://192.168.1.20:554/stream2"')
    if "@" in parts.netloc:
        what = "a password" if parts.password is not None else "a user name"
        raise ValueError(f"carries {what}; {_CREDENTIALS_HINT}")
    for key, _ in parse_qsl(parts.query):
        if re.search(r"pass|pwd", key, re.IGNORECASE):
            raise ValueError(f"carries a password (query parameter {key}); {_CREDENTIALS_HINT}")
    return url


Pin = Annotated[int | str, BeforeValidator(_pin)]
Names = Annotated[tuple[ClassName, ...], Field(strict=False), AfterValidator(_unique)]
TopicPrefix = Annotated[StrictStr, AfterValidator(_topic_prefix)]
DiscoveryPrefix = Annotated[StrictStr, AfterValidator(_discovery_prefix)]
FleetPrefix = Annotated[StrictStr, AfterValidator(_fleet_prefix)]
Host = Annotated[StrictStr, AfterValidator(_host)]
CredentialName = Annotated[StrictStr, AfterValidator(_credential_name)]
EdgeTpuDevice = Annotated[StrictStr | None, AfterValidator(_edgetpu_device)]
Commands = Annotated[tuple[str, ...], BeforeValidator(_commands)]
CameraDevice = Annotated[str, BeforeValidator(_camera_device)]
StreamUrl = Annotated[StrictStr, AfterValidator(_stream_url)]
FleetName = Annotated[StrictStr, AfterValidator(_fleet_name)]  # "" or a topic level


# --- listen addresses (`[web] listen`) ---------------------------------------------------

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


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Listen = Annotated[StrictStr, AfterValidator(_listen)]
