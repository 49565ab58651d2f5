"""The one layer between pydantic and the messages people read.

Config files, MQTT command payloads and bundle manifests are all declared as pydantic models
(ranges, defaults and choices written once, on the field). Pydantic reports an error as a
location and an error type; users want the key, the value they gave and what is allowed. This
module turns each pydantic error into a :class:`Problem` that carries exactly that, with what
the field accepts (:class:`Expected`) read from the model's own declaration, so the three
consumers can each word one line in their own voice (a config line, a command refusal, a
manifest error) without restating any range.

A field can override the generic description with ``Field(json_schema_extra={"allowed": ...})``
or add a hint with ``{"hint": ...}``; a validator's ``ValueError`` message is used as it is.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.fields import FieldInfo


class StrictModel(BaseModel):
    """Base of every schema model: unknown keys are errors, values are never coerced.

    Strict mode keeps ``"1"`` from passing as 1 and ``1`` as true; containers stay lax so JSON
    and TOML lists fill tuple fields (their items are strict types). Defaults are validated too,
    so a default that is computed (an empty topic prefix becoming ``personalizer/<host>``) is.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, validate_default=True
    )


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

Kind = Literal["missing", "unknown", "invalid"]


@dataclass(frozen=True)
class Expected:
    """What a field accepts, as declared on the model."""

    type: str  # bool, int, float, str, path, secret, choice, list, table, other
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # "greater than" rather than "from"
    choices: tuple[Any, ...] = ()
    allowed: str = ""  # the field's own wording, overriding the generic one
    hint: str = ""  # appended to the generic wording
    fields: tuple[str, ...] = ()  # for tables: the keys they take


@dataclass(frozen=True)
class Problem:
    """One error: where (``path``), the value found, and what the field accepts."""

    path: tuple[str | int, ...]
    value: Any
    kind: Kind
    expected: Expected = field(default_factory=lambda: Expected("other"))
    message: str = ""  # a validator's own reason; empty for type and range errors

    @property
    def dotted(self) -> str:
        """``mqtt.port``, ``parameters[0].shape``."""
        return dotted(self.path)

    @property
    def key(self) -> str:
        """The last named key of the path (``port``; ``shape`` for ``parameters[0].shape``)."""
        names = [p for p in self.path if isinstance(p, str)]
        return names[-1] if names else ""

    def suggestion(self) -> str:
        """For an unknown key: the closest allowed key, or ''."""
        if self.kind != "unknown" or not self.path:
            return ""
        close = difflib.get_close_matches(str(self.path[-1]), self.expected.fields, n=1)
        return close[0] if close else ""


def dotted(path: Sequence[str | int]) -> str:
    """Join a location: ``("a", 0, "b")`` -> ``a[0].b``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problems_of(error: ValidationError, model: Any) -> list[Problem]:
    """The problems of a validation error raised by ``model`` (a model class or a type)."""
    found = []
    for detail in error.errors(include_url=False):
        path = tuple(detail["loc"])
        kind: Kind = "invalid"
        if detail["type"] == "missing":
            kind = "missing"
        elif detail["type"] == "extra_forbidden":
            kind = "unknown"
        value = MISSING if kind == "missing" else detail.get("input")
        message = ""
        if detail["type"] in ("value_error", "assertion_error"):
            message = str(detail.get("ctx", {}).get("error", detail["msg"]))
        if kind == "unknown":
            expected = Expected("table", fields=field_names(_annotation_at(model, path[:-1])))
        else:
            expected = describe_at(model, path)
        found.append(Problem(_public_path(model, path), value, kind, expected, message))
    return found


# --- reading the model's declaration ------------------------------------------------------------


def field_names(annotation: Any) -> tuple[str, ...]:
    """The keys a model takes (aliases where set), in declaration order."""
    model = _model_of(annotation)
    if model is None:
        return ()
    return tuple(info.alias or name for name, info in model.model_fields.items())


def describe_at(model: Any, path: Sequence[str | int]) -> Expected:
    """What the field at ``path`` of ``model`` accepts."""
    annotation, info = _field_at(model, path)
    return describe(annotation, info)


def describe(annotation: Any, info: FieldInfo | None = None) -> Expected:
    """What a value of ``annotation`` (with ``info``'s constraints) may be."""
    extra = info.json_schema_extra if info is not None else None
    extra = extra if isinstance(extra, dict) else {}
    allowed, hint = str(extra.get("allowed", "")), str(extra.get("hint", ""))
    metadata = list(info.metadata) if info is not None else []
    annotation, more = _unwrap(annotation)
    metadata += more
    low = high = None
    low_open = False
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt
        elif isinstance(item, annotated_types.Interval):
            low, high = item.ge if item.ge is not None else item.gt, item.le
            low_open = item.gt is not None
    origin = typing.get_origin(annotation)
    if annotation is bool:
        kind = "bool"
    elif annotation is int:
        kind = "int"
    elif annotation is float:
        kind = "float"
    elif annotation is str:
        kind = "str"
    elif annotation is SecretStr:
        kind = "secret"
    elif isinstance(annotation, type) and issubclass(annotation, PurePath):
        kind = "path"
    elif origin is Literal:
        return Expected("choice", choices=typing.get_args(annotation), allowed=allowed, hint=hint)
    elif origin in (list, tuple, set, frozenset):
        kind = "list"
    elif origin is dict or _model_of(annotation) is not None:
        return Expected("table", allowed=allowed, hint=hint, fields=field_names(annotation))
    else:
        kind = "other"
    return Expected(kind, low, high, low_open, allowed=allowed, hint=hint)


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (keeping its constraints) and ``None`` from an annotation."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                if isinstance(item, FieldInfo):
                    metadata += item.metadata
                else:
                    metadata.append(item)
            continue
        if _is_union(annotation):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation, _ = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _step(annotation: Any, part: str | int) -> tuple[Any, FieldInfo | None] | None:
    """The annotation one level below ``annotation`` at ``part``; None when unknown."""
    annotation, _ = _unwrap(annotation)
    model = _model_of(annotation)
    if model is not None:
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return info.annotation, info
        return None
    if _is_union(annotation):
        # A discriminated union: pydantic puts the tag (the member's literal) in the path.
        for member in typing.get_args(annotation):
            member_model = _model_of(member)
            if member_model is not None and _tag_of(member_model) == part:
                return member_model, None
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, set, frozenset) and args:
        return args[0], None
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0], None
        return (args[part] if isinstance(part, int) and part < len(args) else args[0]), None
    if origin is dict and len(args) == 2:
        return args[1], None
    return None


def _tag_of(model: type[BaseModel]) -> Any:
    for info in model.model_fields.values():
        args = typing.get_args(info.annotation)
        if typing.get_origin(info.annotation) is Literal and len(args) == 1:
            return args[0]
    return None


def _field_at(model: Any, path: Sequence[str | int]) -> tuple[Any, FieldInfo | None]:
    annotation: Any = model
    info: FieldInfo | None = None
    for part in path:
        step = _step(annotation, part)
        if step is None:
            return Any, None
        annotation, info = step
    return annotation, info


def _annotation_at(model: Any, path: Sequence[str | int]) -> Any:
    return _field_at(model, path)[0]


def _public_path(model: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the parts of a location that are not keys the user wrote (union tags, validator
    names such as ``function-after[...]``)."""
    kept: list[str | int] = []
    annotation: Any = model
    for part in path:
        step = _step(annotation, part)
        if step is None:
            if isinstance(part, str) and ("[" in part or part.startswith("function-")):
                continue
            kept.append(part)
            annotation = Any
            continue
        unwrapped, _ = _unwrap(annotation)
        if not _is_union(unwrapped):
            kept.append(part)
        annotation = step[0]
    return tuple(kept)
