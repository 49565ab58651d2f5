"""Commands: what a client (MQTT) or a button asks the daemon to do, as typed objects.

These objects are the daemon's *input events*: the MQTT layer parses `<root>/cmd/<name>` payloads
into them with :func:`parse_command`, and physical buttons build the same objects directly (with
``source="button"``), so both take exactly the same code path. Parsing validates everything
(JSON shape, field types, class names, image size and format) before anything is changed; a bad
command raises :class:`CommandError` whose message is the reason sent back with ``ok: false``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .images import ImageDecodeError, decode_base64, decode_image

RequestId = str | int | float | None

SOURCES = ("button", "mqtt")
MAX_REQUEST_ID_LENGTH = 200


@dataclass(frozen=True)
class SampleCommand:
    """Take the current frame (or `image`) as a sample of `class_name`."""

    class_name: str
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    source: str = "mqtt"
    request_id: RequestId = None
    name = "sample"


@dataclass(frozen=True)
class TrainCommand:
    """Start or stop (pause) the background trainer."""

    action: str  # "start" | "stop"
    source: str = "mqtt"
    request_id: RequestId = None
    name = "train"


@dataclass(frozen=True)
class ClassifyCommand:
    """Classify one given image (the camera is not involved)."""

    image: np.ndarray = field(repr=False, compare=False)
    source: str = "mqtt"
    request_id: RequestId = None
    name = "classify"


@dataclass(frozen=True)
class ResetCommand:
    """Clear the samples of one class, or (`class_name` None) every sample and parameter."""

    class_name: str | None
    source: str = "mqtt"
    request_id: RequestId = None
    name = "reset"


@dataclass(frozen=True)
class SaveCommand:
    """Write the state to disk now."""

    source: str = "mqtt"
    request_id: RequestId = None
    name = "save"


Command = SampleCommand | TrainCommand | ClassifyCommand | ResetCommand | SaveCommand
COMMAND_NAMES = ("sample", "train", "classify", "reset", "save")


class CommandError(Exception):
    """A command that is refused; `reason` goes back to the client with ``ok: false``."""

    def __init__(self, reason: str, request_id: RequestId = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


@dataclass(frozen=True)
class CommandLimits:
    """What the parser accepts: the model's classes, the size caps and the enabled commands."""

    classes: Sequence[str]
    max_image_pixels: int
    max_payload_bytes: int
    enabled: Sequence[str] = COMMAND_NAMES  # mqtt.commands


def _request_id(payload: dict[str, Any]) -> RequestId:
    value = payload.get("request_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CommandError("request_id must be a string or a number")
    if isinstance(value, str) and len(value) > MAX_REQUEST_ID_LENGTH:
        raise CommandError(f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    return value


class _Fields:
    """Typed access to a command's JSON object; reports the first problem as a CommandError."""

    def __init__(self, name: str, payload: dict[str, Any], request_id: RequestId) -> None:
        self.name = name
        self.payload = payload
        self.request_id = request_id

    def fail(self, reason: str) -> CommandError:
        return CommandError(reason, self.request_id)

    def only(self, *allowed: str) -> None:
        unknown = sorted(set(self.payload) - {*allowed, "request_id"})
        if unknown:
            listed = ", ".join(f'"{k}"' for k in (*allowed, "request_id"))
            raise self.fail(f"unknown field(s) {', '.join(unknown)} for {self.name}; use {listed}")

    def string(self, key: str, required: bool = True) -> str | None:
        value = self.payload.get(key)
        if value is None:
            if required:
                raise self.fail(f'{self.name} needs "{key}" (a string)')
            return None
        if not isinstance(value, str):
            raise self.fail(f'"{key}" must be a string, not {type(value).__name__}')
        return value

    def class_name(self, classes: Sequence[str], required: bool = True) -> str | None:
        value = self.string("class", required)
        if value is not None and value not in classes:
            raise self.fail(f'unknown class "{value}"; the classes are {", ".join(classes)}')
        return value

    def image(self, max_pixels: int, required: bool) -> np.ndarray | None:
        text = self.string("image", required)
        if text is None:
            return None
        try:
            return decode_image(decode_base64(text), max_pixels)
        except ImageDecodeError as exc:
            raise self.fail(str(exc)) from None


def _decode_payload(payload: bytes, limits: CommandLimits) -> dict[str, Any]:
    if len(payload) > limits.max_payload_bytes:
        raise CommandError(
            f"payload is {len(payload)} bytes, more than the limit of {limits.max_payload_bytes} "
            "(mqtt.max_payload_bytes); send a smaller image"
        )
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CommandError(
            'payload is not JSON; send a JSON object such as {"class": "A"}'
        ) from None
    except (
        RecursionError
    ):  # json recurses per nesting level: [[[[... must not be an "internal error"
        raise CommandError("payload is nested too deeply; send a flat JSON object") from None
    if not isinstance(document, dict):
        raise CommandError(f"payload must be a JSON object, not {type(document).__name__}")
    return document


def _unknown_command(name: str) -> str:
    return f'unknown command "{name}"; the commands are {", ".join(COMMAND_NAMES)}'


def parse_command(name: str, payload: bytes, limits: CommandLimits) -> Command:
    """Turn the payload of `<root>/cmd/<name>` into a typed command, or raise CommandError."""
    try:
        document = _decode_payload(payload, limits)
        request_id = _request_id(document)
    except CommandError as exc:
        if name not in COMMAND_NAMES:
            raise CommandError(_unknown_command(name)) from None
        raise exc
    if name not in COMMAND_NAMES:
        raise CommandError(_unknown_command(name), request_id)
    if name not in limits.enabled:
        enabled = ", ".join(limits.enabled)
        raise CommandError(
            f'command "{name}" is switched off on this daemon (mqtt.commands allows only '
            f"{enabled}); enable it in the config",
            request_id,
        )
    fields = _Fields(name, document, request_id)
    if name == "sample":
        fields.only("class", "image")
        class_name = fields.class_name(limits.classes)
        image = fields.image(limits.max_image_pixels, required=False)
        assert class_name is not None
        return SampleCommand(class_name, image, "mqtt", request_id)
    if name == "train":
        fields.only("action")
        action = fields.string("action")
        if action not in ("start", "stop"):
            raise fields.fail(f'"action" must be "start" or "stop", not {json.dumps(action)}')
        return TrainCommand(action, "mqtt", request_id)
    if name == "classify":
        fields.only("image")
        image = fields.image(limits.max_image_pixels, required=True)
        assert image is not None
        return ClassifyCommand(image, "mqtt", request_id)
    if name == "reset":
        fields.only("class", "all")
        everything = document.get("all", False)
        if not isinstance(everything, bool):
            raise fields.fail('"all" must be true or false')
        class_name = fields.class_name(limits.classes, required=False)
        if everything == (class_name is not None):
            raise fields.fail('reset needs either {"class": "<name>"} or {"all": true}')
        return ResetCommand(class_name, "mqtt", request_id)
    fields.only()
    return SaveCommand("mqtt", request_id)
