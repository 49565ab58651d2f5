"""What a class name may be: the one rule the config, the commands and the model share."""

from __future__ import annotations

MAX_CLASS_NAME_LENGTH = 64


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name (to follow the name in a message), or None."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        return "is not a usable class name: no empty names or leading/trailing spaces"
    if len(name) > MAX_CLASS_NAME_LENGTH:
        return f"is longer than {MAX_CLASS_NAME_LENGTH} characters"
    if any(ord(ch) < 32 for ch in name):
        return "contains control characters"
    return None
