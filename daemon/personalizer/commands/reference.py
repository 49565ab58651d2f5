"""The commands' reference, written from the payload models (commands/payloads.py).

Each command's model says what it does (its docstring), what to send and what comes back; the
docs' table (:func:`commands_markdown`), the CLI's help (:func:`commands_help`) and the web page's
list of commands (:data:`PAGE_COMMANDS`) are made from them, so a new command is documented
everywhere by its model alone.
"""

from __future__ import annotations

from .payloads import PAYLOADS

PAGE_COMMANDS: tuple[str, ...] = tuple(name for name, model in PAYLOADS.items() if model.page)


def summary(name: str) -> str:
    """What command ``name`` does, in words (its model's docstring without the name)."""
    doc = " ".join((PAYLOADS[name].__doc__ or "").split())
    return doc.split(": ", 1)[1] if doc.startswith(f"`{name}`: ") else doc


def commands_markdown() -> str:
    """The table of commands for the docs: name, what to send, what it does, the result."""
    lines = ["| command | payload | what it does | result fields |", "|---|---|---|---|"]
    for name, model in PAYLOADS.items():
        lines.append(f"| `{name}` | {model.payload} | {summary(name)} | {model.answer} |")
    return "\n".join(lines) + "\n"


def commands_help() -> str:
    """The commands as the CLI's help lists them: one line each, what to send and what for."""
    width = max(len(name) for name in PAYLOADS)
    lines = ["MQTT commands (publish JSON to <topic_prefix>/cmd/<name>):"]
    for name, model in PAYLOADS.items():
        lines.append(f"  {name:<{width}}  {model.short}")
        lines.append(f"  {'':<{width}}    {summary(name)}")
    lines.append(
        "Results arrive on <topic_prefix>/cmd/<name>/result. Full reference: docs/daemon.md."
    )
    return "\n".join(lines)
