"""The daemon's configuration: one TOML file, parsed once into typed, frozen section models.

Every problem is collected (not just the first) and reported with its key path, the value found
and what is allowed, so one run of `personalizer check-config` shows everything to fix. Relative
paths are taken relative to the folder of the config file. The rest of the daemon only ever sees
the typed objects, never raw dicts.

- :mod:`.models`: the sections, every key with its default and range;
- :mod:`.checks`: what needs the file system or another key (bundle, passwords, pins);
- :mod:`.report`: the problem lines.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError

from ..redaction import redact_url
from ..schema import MISSING, StrictModel, problems_of
from . import checks
from .devices import CameraConfig, GpioConfig, PinAssignment
from .models import SECTIONS, InferenceConfig, ModelConfig, StateConfig, TrainingConfig
from .network import FleetConfig, MqttConfig, WebConfig
from .report import ConfigError, ConfigProblem, config_problem
from .values import INSTANCE_ENV, default_topic_prefix, instance_problem, pin_key

__all__ = [
    "CameraConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "FleetConfig",
    "GpioConfig",
    "InferenceConfig",
    "ModelConfig",
    "MqttConfig",
    "PinAssignment",
    "StateConfig",
    "TrainingConfig",
    "WebConfig",
    "default_topic_prefix",
    "load_config",
    "parse_config",
    "pin_key",
]


class Config(StrictModel):
    """The whole validated configuration."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: Path
    model: ModelConfig
    camera: CameraConfig
    inference: InferenceConfig
    training: TrainingConfig
    mqtt: MqttConfig
    state: StateConfig
    gpio: GpioConfig
    web: WebConfig
    fleet: FleetConfig

    def summary(self) -> str:
        """One line that says what this configuration will do."""
        classes = ",".join(self.model.classes) if self.model.classes else "from bundle"
        camera = self.camera.source
        if self.camera.source in ("replay", "auto") and self.camera.path is not None:
            camera += f" ({self.camera.path})"
        elif self.camera.source == "opencv":
            camera += f" ({self.camera.device})"
        elif self.camera.source == "stream" and self.camera.url is not None:
            camera += f" ({redact_url(self.camera.url)})"
        return (
            f"config OK: bundle {self.model.bundle} classes [{classes}], camera {camera} "
            f"{self.camera.width}x{self.camera.height}@{self.camera.fps:g}fps, "
            f"mqtt {self.mqtt.host}:{self.mqtt.port} topic {self.mqtt.topic_prefix}, "
            f"state {self.state.dir}"
            + (f", web {self.web.url}" if self.web.enabled else "")
            + (
                f", fleet {self.fleet.group} ({self.fleet.mode}, as {self.fleet.board})"
                if self.fleet.enabled
                else ""
            )
        )


def parse_config(
    document: Mapping[str, Any], source: Path, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate an already parsed TOML document; raises ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    report = checks.reporter(problems)
    instance = environ.get(INSTANCE_ENV, "")
    context = {"base": source.parent.resolve(), "from_file": True, "instance": instance}
    if instance and instance_problem(instance):
        report(INSTANCE_ENV, instance, f"{instance_problem(instance)} (the unit's %i)")
    if "model" not in document:
        report("model", MISSING, "add a [model] table with bundle = ...")
    sections: dict[str, Any] = {}
    for name, model in SECTIONS.items():
        table = document.get(name, {})
        if not isinstance(table, dict):
            report(name, table, f"must be a table ([{name}])")
            continue
        try:
            sections[name] = model.model_validate(table, context=context)
        except ValidationError as err:
            found = problems_of(err, model)
            problems.extend(config_problem(name, p, table) for p in found)
            # Without the bad keys (their defaults instead), the section can still take the
            # checks below, so one run reports every problem, not only the first kind.
            for whole_entries in (False, True):
                try:
                    partial = _without(table, found, whole_entries)
                    sections[name] = model.model_validate(partial, context=context)
                    break
                except ValidationError:
                    continue
    for name, value in document.items():
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, list(SECTIONS), n=1)
            hint = f' (did you mean "[{close[0]}]"?)' if close else ""
            report(name, value, f"unknown section{hint}; allowed: {', '.join(SECTIONS)}")

    if "model" in sections:
        sections["model"] = checks.check_model(sections["model"], report)
    if "camera" in sections:
        sections["camera"] = checks.check_camera(sections["camera"], environ, report)
    if "mqtt" in sections:
        sections["mqtt"] = checks.check_mqtt(sections["mqtt"], environ, report)
    if "state" in sections:
        sections["state"] = checks.check_state(sections["state"], report)
    if "gpio" in sections:
        classes = sections["model"].classes if "model" in sections else None
        sections["gpio"] = checks.check_gpio(sections["gpio"], classes, report)
    if "web" in sections:
        sections["web"] = checks.check_web(sections["web"], environ, report)
    if {"fleet", "mqtt", "state"} <= set(sections):
        sections["fleet"] = checks.check_fleet(
            sections["fleet"], sections["mqtt"], sections["state"], report
        )
    if problems:
        raise ConfigError(source, problems)
    return Config(source=source, **sections)


def _without(table: dict[str, Any], problems: list[Any], whole_entries: bool) -> dict[str, Any]:
    """``table`` without the keys that have problems; in lists of tables, without the bad keys
    of an entry (or, with ``whole_entries``, without the entry)."""
    kept = dict(table)
    for problem in problems:
        path = problem.path
        if not path or path[0] not in kept:
            continue
        key = path[0]
        entries = kept[key]
        if len(path) >= 3 and isinstance(path[1], int) and isinstance(entries, list):
            entries = list(entries)
            if whole_entries or not isinstance(entries[path[1]], dict):
                entries[path[1]] = None
            else:
                entries[path[1]] = {k: v for k, v in entries[path[1]].items() if k != path[2]}
            kept[key] = entries
        else:
            del kept[key]
    return {
        k: [e for e in v if e is not None] if isinstance(v, list) else v for k, v in kept.items()
    }


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
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
