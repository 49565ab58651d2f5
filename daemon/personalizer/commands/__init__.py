"""Commands: what a client (MQTT, the web page) or a button asks the daemon to do.

A :class:`Command` is a typed payload (:mod:`.payloads`) plus where it came from. The MQTT layer
turns `<root>/cmd/<name>` messages into commands with :func:`parse_command`; buttons build them
with :meth:`Command.local`; both take exactly the same path from there. Parsing checks the size
(once, here), the JSON, the command's name and whether it is switched on, then validates the
payload; anything wrong raises :class:`CommandError`, whose reason goes back with ``ok: false``.

What each command does is in the engine's handlers (engine/handlers/); :func:`reply` builds
every result, ``request_id`` attached once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import PersonalizerError
from ..schema import Problem, problems_of
from .payloads import (
    COMMAND_NAMES,
    PAYLOAD_ADAPTER,
    CommandPayload,
    Payload,
    payload_fields,
)

__all__ = [
    "COMMAND_NAMES",
    "Command",
    "CommandError",
    "CommandLimits",
    "CommandPayload",
    "Payload",
    "parse_command",
    "reply",
]

RequestId = str | int | float | None
SOURCES = ("button", "mqtt", "web")


class CommandError(PersonalizerError):
    """A command that is refused; `reason` goes back to the client with ``ok: false``."""

    def __init__(self, reason: str, request_id: RequestId = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    """One command to carry out: its name, its validated payload and where it came from."""

    name: str
    payload: Any  # one of the models of CommandPayload
    source: str = "mqtt"

    @property
    def request_id(self) -> RequestId:
        """The client's `request_id`, echoed in the result."""
        return self.payload.request_id

    @classmethod
    def local(cls, name: str, fields: dict[str, Any], source: str) -> Command:
        """A command from a local input (a button, the web page); ValueError if malformed."""
        try:
            payload = PAYLOAD_ADAPTER.validate_python({**fields, "command": name})
        except ValidationError as err:
            raise CommandError(_reason(name, problems_of(err, CommandPayload), fields)) from None
        return cls(name, payload, source)


@dataclass(frozen=True)
class CommandLimits:
    """What the parser accepts: the size caps and the enabled commands (`mqtt.commands`)."""

    max_image_pixels: int
    max_payload_bytes: int
    enabled: Sequence[str] = COMMAND_NAMES


def reply(request_id: RequestId, error: str | None = None, **result: Any) -> dict[str, Any]:
    """A command's result: ``ok``, ``error`` when not ok, ``request_id``, the result fields."""
    if error is not None:
        return {"ok": False, "error": error, "request_id": request_id}
    return {"ok": True, "request_id": request_id, **result}


def _unknown_command(name: str) -> str:
    return f'unknown command "{name}"; the commands are {", ".join(COMMAND_NAMES)}'


def _decode(payload: bytes, limits: CommandLimits) -> dict[str, Any]:
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
    except RecursionError:  # json recurses per nesting level: [[[[... is not an internal error
        raise CommandError("payload is nested too deeply; send a flat JSON object") from None
    if not isinstance(document, dict):
        raise CommandError(f"payload must be a JSON object, not {type(document).__name__}")
    return document


def _request_id_of(document: dict[str, Any]) -> RequestId:
    """The request id, when it is a valid one (so that even a refusal can echo it)."""
    value = document.get("request_id")
    valid = isinstance(value, str | int | float) and not isinstance(value, bool)
    return value if valid and not (isinstance(value, str) and len(value) > 200) else None


def parse_command(name: str, payload: bytes, limits: CommandLimits) -> Command:
    """Turn the payload of `<root>/cmd/<name>` into a typed command, or raise CommandError."""
    try:
        document = _decode(payload, limits)
    except CommandError:
        if name not in COMMAND_NAMES:
            raise CommandError(_unknown_command(name)) from None
        raise
    request_id = _request_id_of(document)
    if name not in COMMAND_NAMES:
        raise CommandError(_unknown_command(name), request_id)
    if name not in limits.enabled:
        raise CommandError(
            f'command "{name}" is switched off on this daemon (mqtt.commands allows only '
            f"{', '.join(limits.enabled)}); enable it in the config",
            request_id,
        )
    if "command" in document:  # the tag is the topic's, never the client's
        raise CommandError(_unknown_fields(name, ["command"]), request_id)
    try:
        validated = PAYLOAD_ADAPTER.validate_python(
            {**document, "command": name}, context={"max_image_pixels": limits.max_image_pixels}
        )
    except ValidationError as err:
        problems = problems_of(err, CommandPayload)
        raise CommandError(_reason(name, problems, document), request_id) from None
    return Command(name, validated, "mqtt")


# --- refusals -----------------------------------------------------------------------------------


def _unknown_fields(name: str, keys: list[str]) -> str:
    listed = ", ".join(f'"{k}"' for k in payload_fields(name))
    return f"unknown field(s) {', '.join(sorted(keys))} for {name}; use {listed}"


_PHRASES = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "a string",
    "list": "a list",
    "table": "an object",
}


def _reason(name: str, problems: list[Problem], document: dict[str, Any]) -> str:
    """The one reason a refused payload gets: the first problem, worded for the client."""
    unknown = [str(p.path[-1]) for p in problems if p.kind == "unknown" and p.path]
    if unknown:
        return _unknown_fields(name, unknown)
    problem = problems[0]
    key = problem.key
    if problem.message:
        return problem.message
    expected = problem.expected
    if expected.type == "choice":
        want = " or ".join(json.dumps(c) for c in expected.choices)
    else:
        want = _PHRASES.get(expected.type, "of another type")
    if expected.low is not None and expected.high is not None:
        want += f" from {expected.low:g} to {expected.high:g}"
    elif expected.low is not None:
        want += f" of {expected.low:g} or more"
    if problem.kind == "missing":
        return f'{name} needs "{key}" ({want})'
    value = problem.value
    same_kind = expected.type == "int" and isinstance(value, int) and not isinstance(value, bool)
    if expected.type == "choice" or same_kind:
        return f'"{key}" must be {want}, not {json.dumps(value, default=str)}'
    return f'"{key}" must be {want}, not {type(value).__name__}'
