"""Configuration problems as the lines `personalizer check-config` prints.

Every line names the key (``section.key``), the value found and what is allowed:

    mqtt.port = 70000: must be a whole number from 1 to 65535
    camera.fsp = 3: unknown key (did you mean "fps"?); [camera] allows: source, device, ...
    camera.path: missing; source = "replay" needs a folder of images or a video
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PersonalizerError
from ..redaction import redact_url
from ..schema import MISSING, Expected, Problem


def show(value: Any) -> str:
    """A value as the user wrote it in TOML."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{table}"
    if isinstance(value, list | tuple):
        return json.dumps(list(value), default=str)
    if isinstance(value, Path):
        return json.dumps(str(value))
    return repr(value)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration: where, what was found, what is allowed."""

    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.key}: missing; {self.allowed}"
        # A password typed into an unknown key must not end up in the journal.
        secret = self.allowed.startswith("unknown key") and any(
            word in self.key.lower() for word in ("pass", "secret", "token")
        )
        if secret and isinstance(self.value, str):
            value = '"********"'
        elif isinstance(self.value, str) and "://" in self.value:
            value = show(redact_url(self.value))  # a camera URL with a password in it
        else:
            value = show(self.value)
        return f"{self.key} = {value}: {self.allowed}"


class ConfigError(PersonalizerError, ValueError):
    """The configuration cannot be used; `problems` lists every reason."""

    def __init__(self, source: Path | str, problems: list[ConfigProblem]) -> None:
        self.source = Path(source)
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s) in the configuration:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def allowed_text(expected: Expected) -> str:
    """What a field takes, in the config file's words."""
    if expected.allowed:
        return expected.allowed
    hint = expected.hint
    if expected.type == "bool":
        return "must be true or false (no quotes)"
    if expected.type == "int":
        if expected.high is None:
            return f"must be a whole number of {expected.low:.0f} or more{hint}"
        return f"must be a whole number from {expected.low:.0f} to {expected.high:.0f}{hint}"
    if expected.type == "float":
        bound = f"greater than {expected.low:g}" if expected.low_open else f"from {expected.low:g}"
        return f"must be a number {bound} up to {expected.high:g}{hint}"
    if expected.type == "choice":
        return "must be one of " + ", ".join(json.dumps(c) for c in expected.choices if c)
    if expected.type in ("str", "secret"):
        return 'must be a string in quotes, e.g. "text"'
    if expected.type == "path":
        return "must be a path in quotes"
    if expected.type == "list":
        return 'must be a list of strings, e.g. ["cup", "pen"]'
    if expected.type == "table":
        return "must be a table"
    return "has the wrong type"


def config_problem(section: str, problem: Problem, table: dict[str, Any]) -> ConfigProblem:
    """A problem of one section's table, worded for the config file."""
    path = list(problem.path)
    # An item of a list of plain values is reported at its key, with the whole list.
    if len(path) >= 2 and isinstance(path[1], int) and len(path) == 2:
        path = path[:1]
    key = ".".join([section, *(f"[{p}]" if isinstance(p, int) else p for p in path)])
    key = key.replace(".[", "[")
    value = problem.value
    if len(path) != len(problem.path) and path and path[0] in table:
        value = table[path[0]]
    if problem.kind == "unknown":
        suggestion = problem.suggestion()
        hint = f' (did you mean "{suggestion}"?)' if suggestion else ""
        where = f"[{section}]" if len(path) == 1 else f"each entry of {section}.{path[0]}"
        return ConfigProblem(
            key, value, f"unknown key{hint}; {where} allows: {', '.join(problem.expected.fields)}"
        )
    if problem.kind == "missing":
        return ConfigProblem(key, MISSING, problem.expected.allowed or "set it")
    return ConfigProblem(key, value, problem.message or allowed_text(problem.expected))
