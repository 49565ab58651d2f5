"""Home Assistant's log, read as records, and what in it means the daemon's entities went wrong.

A record starts with ``2026-12-05 02:38:58.283+00:00 ERROR (MainThread) [logger] message``
(the UTC offset since 2025; older releases write none) and runs until the next record: a
traceback is part of the record it follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

RECORD_START = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?) "
    r"(?P<level>[A-Z]+) \((?P<thread>[^)]*)\) \[(?P<logger>[^\]]+)\] (?P<message>.*)$"
)
# How Home Assistant reports a discovery config it refused (homeassistant/components/mqtt).
REJECTED = re.compile(r"Error '.*' when processing MQTT discovery message", re.DOTALL)
# The MQTT integration, and the template engine that renders the daemon's templates (nothing
# else in the test instance has templates).
WATCHED_LOGGERS = ("homeassistant.components.mqtt", "homeassistant.helpers.template")
MQTT_CODE = "/homeassistant/components/mqtt/"
SERIOUS = ("WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LogRecord:
    """One record: its level, logger, and text (first line and any traceback)."""

    level: str
    logger: str
    text: str

    @property
    def first_line(self) -> str:
        """The record's own line, without a traceback."""
        return self.text.split("\n", 1)[0]


def records(log: str) -> list[LogRecord]:
    """The records of a log's text (lines before the first record are dropped)."""
    found: list[LogRecord] = []
    current: list[str] = []
    header: re.Match[str] | None = None
    for line in [*log.splitlines(), None]:
        match = RECORD_START.match(line) if line is not None else None
        if line is None or match:
            if header is not None:
                found.append(LogRecord(header["level"], header["logger"], "\n".join(current)))
            header, current = match, [line] if line is not None else []
        elif header is not None:
            current.append(line)
    return found


def problems(log: str, about: Iterable[str] = ()) -> list[str]:
    """What in `log` says a discovery config or an MQTT entity went wrong.

    - a discovery config Home Assistant rejected (in any logger);
    - a warning or error of the MQTT integration (bad JSON, an invalid state, a deprecated
      option, ...) or of the template engine (a template that does not render);
    - a traceback through the MQTT integration's code;
    - a warning or error of any logger that names one of `about` (the daemon's root topic, its
      discovery node id: a template or entity of the daemon that failed elsewhere).
    """
    marks = [mark for mark in about if mark]
    found = []
    for record in records(log):
        serious = record.level in SERIOUS
        if (
            REJECTED.search(record.text)
            or (serious and record.logger.startswith(WATCHED_LOGGERS))
            or ("Traceback" in record.text and MQTT_CODE in record.text)
            or (serious and any(mark in record.text for mark in marks))
        ):
            found.append(record.text if len(record.text) < 3000 else record.text[:3000] + " ...")
    return found
