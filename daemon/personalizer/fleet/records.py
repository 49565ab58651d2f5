"""The fleet's records on the broker: what each retained message says, and reading one safely.

A board writes only under its own level of the group (mqtt/topics.py, ``FleetTopics``):

- ``<group>/<board>/s/<uid>``: this board's record of the sample ``uid``, one of
  - ``sample`` (only the board that took it, its *origin*): a JSON line, ``\\n``, then the
    model-input JPEG exactly as stored (no base64: the wire carries about 1.02x the JPEG);
  - ``label``: another board moved the sample to another class;
  - ``deleted``: a tombstone (the sample was deleted; a board that was away learns it);
- ``<group>/<board>/classes``: the class changes this board made, as one JSON document.

Every record carries a version (``ts``, ``by``: fleet/clock.py). The JSON line::

    {"v": 1, "kind": "sample", "uid": "<32 hex>", "origin": "kitchen", "class": "cup",
     "created": 1795612731.45, "ts": 1795612731.45, "by": "kitchen"}

Reading is careful, as for a ``cmd/sample`` image: the size is bounded before anything is read
(the caller, and :data:`MAX_HEADER_BYTES` here), every field is checked for type and range, and
the JPEG is decoded later with its size read from the header first (images.py). Anything wrong
raises :class:`RecordError`, whose message says what was wrong and what to do; nothing of such a
message is used.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..class_names import class_name_problem
from ..config.values import fleet_name_problem
from ..errors import PersonalizerError

FORMAT_VERSION = 1
MAX_HEADER_BYTES = 4096  # the JSON line of a sample record
MAX_CLASS_RECORDS = 64  # class changes one board keeps on the broker
MAX_CLASSES_BYTES = 32 * 1024
UID = re.compile(r"[0-9a-f]{32}")
STATES = ("active", "renamed", "removed")
LATEST = 1e11  # year 5138: later is not a time


class RecordError(PersonalizerError, ValueError):
    """A group message that cannot be used; the message says what was wrong and what to do."""


Version = tuple[float, str]  # (time, board): see fleet/clock.py


@dataclass(frozen=True)
class SampleRecord:
    """A sample as its origin publishes it: class label (with the label's version) and JPEG."""

    uid: str
    origin: str
    class_name: str
    created: float
    version: Version
    jpeg: bytes = field(repr=False)


@dataclass(frozen=True)
class LabelRecord:
    """Another board moved the sample ``uid`` (taken by ``origin``) to ``class_name``."""

    uid: str
    origin: str
    class_name: str
    version: Version


@dataclass(frozen=True)
class DeletedRecord:
    """The sample ``uid`` (taken by ``origin``) was deleted: a tombstone."""

    uid: str
    origin: str
    version: Version


Record = SampleRecord | LabelRecord | DeletedRecord


@dataclass(frozen=True)
class ClassRecord:
    """Class ``name`` became ``state`` (active, renamed to ``target``, removed) at ``version``."""

    name: str
    state: str
    target: str | None
    version: Version


# --- writing ------------------------------------------------------------------------------------


def _line(fields: dict[str, Any]) -> bytes:
    return json.dumps({"v": FORMAT_VERSION, **fields}, separators=(",", ":")).encode()


def encode(record: Record) -> bytes:
    """The payload of a sample topic for ``record``."""
    ts, by = record.version
    if isinstance(record, SampleRecord):
        head = _line(
            {"kind": "sample", "uid": record.uid, "origin": record.origin,
             "class": record.class_name, "created": record.created, "ts": ts, "by": by}
        )  # fmt: skip
        return head + b"\n" + record.jpeg
    if isinstance(record, LabelRecord):
        return _line(
            {"kind": "label", "uid": record.uid, "origin": record.origin,
             "class": record.class_name, "ts": ts, "by": by}
        )  # fmt: skip
    return _line(
        {"kind": "deleted", "uid": record.uid, "origin": record.origin, "ts": ts, "by": by}
    )


def encode_classes(board: str, records: list[ClassRecord]) -> bytes:
    """The payload of ``board``'s classes topic."""
    return _line(
        {
            "kind": "classes",
            "by": board,
            "classes": [
                {"name": r.name, "state": r.state, "to": r.target, "ts": r.version[0]}
                for r in records
            ],
        }
    )


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Which message is being read, for the error messages."""

    topic: str

    def __str__(self) -> str:
        return f"the group message on {self.topic}"

    def fix(self, problem: str) -> str:
        return (
            f"{self} cannot be used ({problem}): it was not written by this version of "
            f"personalizer, or is damaged; to clear it from the broker: mosquitto_pub -r -n "
            f"-t '{self.topic}'"
        )


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...], where: _Where) -> Any:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "a number" if kind in (float, (int, float)) else "a string"
        raise RecordError(where.fix(f'"{name}" must be {wanted}, not {value!r:.40}'))
    return value


def _time(doc: dict[str, Any], name: str, where: _Where) -> float:
    value = float(_field(doc, name, (int, float), where))
    if not math.isfinite(value) or not 0 <= value <= LATEST:
        raise RecordError(where.fix(f'"{name}" = {value!r} is not a time in Unix seconds'))
    return value


def _name(doc: dict[str, Any], name: str, where: _Where) -> str:
    value = _field(doc, name, str, where)
    reason = fleet_name_problem(value)
    if reason:
        raise RecordError(where.fix(f'"{name}" {value!r:.70} {reason}'))
    return str(value)


def _class(doc: dict[str, Any], name: str, where: _Where) -> str:
    value = _field(doc, name, str, where)
    reason = class_name_problem(value)
    if reason:
        raise RecordError(where.fix(f'"{name}": class name {value!r:.70} {reason}'))
    return str(value)


def _json(text: bytes, where: _Where) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise RecordError(where.fix("its first line is not JSON")) from None
    if not isinstance(doc, dict):
        raise RecordError(where.fix("its first line is not a JSON object"))
    if doc.get("v") != FORMAT_VERSION:
        raise RecordError(
            f"{where} has format {doc.get('v')!r:.20}, this board reads {FORMAT_VERSION}; "
            "run the same personalizer version on every board of the group"
        )
    return doc


def read_sample_topic(topic: str, board: str, uid: str, payload: bytes) -> Record:
    """The record that ``board`` published on ``topic`` for ``uid`` (RecordError when it
    cannot be used).

    The size was bounded by the caller (``fleet.max_payload_bytes``); the JPEG is not decoded
    here.
    """
    where = _Where(topic)
    if not UID.fullmatch(uid):
        raise RecordError(where.fix("a sample id is 32 hex digits"))
    end = payload.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    head = payload if end < 0 else payload[:end]
    if len(head) > MAX_HEADER_BYTES:
        raise RecordError(where.fix(f"no line break in its first {MAX_HEADER_BYTES} bytes"))
    doc = _json(head, where)
    kind = doc.get("kind")
    if doc.get("uid") != uid:
        raise RecordError(where.fix('its "uid" is not the one of its topic'))
    origin = _name(doc, "origin", where)
    version = (_time(doc, "ts", where), _name(doc, "by", where))
    if kind == "sample":
        if origin != board:
            raise RecordError(
                f"{where} is a sample of board {origin!r} published by {board!r}; a "
                "board publishes only the samples it took (check the broker's ACL)"
            )
        jpeg = payload[end + 1 :] if end >= 0 else b""
        if not jpeg:
            raise RecordError(where.fix("a sample record carries a JPEG after its line"))
        created = _time(doc, "created", where)
        return SampleRecord(uid, origin, _class(doc, "class", where), created, version, jpeg)
    if end >= 0 and end + 1 < len(payload):
        raise RecordError(where.fix(f"a {kind!r:.20} record carries nothing after its line"))
    if kind == "label":
        return LabelRecord(uid, origin, _class(doc, "class", where), version)
    if kind == "deleted":
        return DeletedRecord(uid, origin, version)
    raise RecordError(where.fix(f'"kind" {kind!r:.30} is not sample, label or deleted'))


def read_classes_topic(topic: str, board: str, payload: bytes) -> list[ClassRecord]:
    """The class changes that ``board`` published on ``topic`` (RecordError when they cannot be
    used)."""
    where = _Where(topic)
    if len(payload) > MAX_CLASSES_BYTES:
        raise RecordError(where.fix(f"it has {len(payload)} bytes; at most {MAX_CLASSES_BYTES}"))
    doc = _json(payload, where)
    if doc.get("kind") != "classes" or doc.get("by") != board:
        raise RecordError(where.fix(f'it must say "kind": "classes", "by": {board!r}'))
    entries = doc.get("classes")
    if not isinstance(entries, list) or len(entries) > MAX_CLASS_RECORDS:
        raise RecordError(where.fix(f'"classes" must be a list of at most {MAX_CLASS_RECORDS}'))
    records = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise RecordError(where.fix('every entry of "classes" is an object'))
        state = entry.get("state")
        if state not in STATES:
            raise RecordError(where.fix(f'"state" {state!r:.30} is not one of {STATES}'))
        target = _class(entry, "to", where) if state == "renamed" else None
        version = (_time(entry, "ts", where), board)
        records.append(ClassRecord(_class(entry, "name", where), state, target, version))
    return records
