"""The default config file and the docs' table of keys, written from the config models.

Every key's words, default and range are declared once, on its field (config/models.py,
devices.py and network.py; ``setting`` in fields.py).
:func:`config_file` renders the documented default ``config/personalizer.toml`` from them and
:func:`keys_markdown` the table of keys in docs/daemon.md; ``scripts/generate-reference.py``
writes both, and a test fails when a committed file differs from what the models say.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import PurePath
from typing import Any

from pydantic.fields import FieldInfo

from ..schema import StrictModel
from .models import SECTIONS

WIDTH = 100
HEADER = """\
personalizer: the daemon's configuration (TOML).

This file is generated from the daemon's config models (config/); every key below
shows its default (optional ones commented out), except model.bundle, which you must set.
Check it with:   personalizer check-config --config /etc/personalizer/personalizer.toml
Unknown keys and bad values are errors that name the key, the value and what is allowed.
Relative paths are relative to the folder of this file."""


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def toml_value(value: Any) -> str:
    """``value`` (a default) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | PurePath):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for the default {value!r}; give the field a toml= literal")


def shown_value(info: FieldInfo) -> str:
    """The value the default config file shows for a key."""
    extra = _extra(info)
    if "toml" in extra:
        return str(extra["toml"])
    return toml_value(info.default)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="# ", subsequent_indent="# ")


def section_doc(model: type[StrictModel]) -> str:
    """A section's docstring without its leading ``[name]`` tag, on one line."""
    doc = " ".join((model.__doc__ or "").split())
    return doc.split(": ", 1)[1] if doc.startswith("`[") and ": " in doc else doc


def config_file() -> str:
    """The documented default config file."""
    lines = [("# " + line).rstrip() for line in HEADER.splitlines()]
    for name, model in SECTIONS.items():
        doc = section_doc(model)
        lines += ["", *_comment(doc[:1].upper() + doc[1:]), f"[{name}]"]
        tables = []
        for key, info in model.model_fields.items():
            extra = _extra(info)
            if "tables" in extra:
                tables.append((info, extra["tables"]))
                continue
            lines += _comment(info.description or "")
            line = f"{info.alias or key} = {shown_value(info)}"
            lines.append(f"# {line}" if extra.get("commented") else line)
        for info, example in tables:
            lines += ["", *_comment(info.description or "")]
            lines += [f"# {line}" for line in example.splitlines()]
    return "\n".join(lines) + "\n"


def keys_markdown() -> str:
    """The table of every key (section, key, default, what it does) for docs/daemon.md."""
    out = []
    for name, model in SECTIONS.items():
        out += [f"**`[{name}]`** {section_doc(model)}", "", "| key | default | what |"]
        out.append("|---|---|---|")
        for key, info in model.model_fields.items():
            extra = _extra(info)
            default = "tables, none by default" if "tables" in extra else shown_value(info)
            if extra.get("commented"):
                default = f"not set (e.g. `{default}`)"
            else:
                default = f"`{default}`"
            what = (info.description or "").replace("|", "\\|")
            out.append(f"| `{info.alias or key}` | {default} | {what} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
