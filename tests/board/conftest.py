"""What the board suite's tests share: systemd-analyze, and a unit file's settings."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def analyze() -> str:
    """systemd-analyze (scores and verifies units without a running systemd)."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return path


def unit_settings(text: str) -> dict[str, list[str]]:
    """The settings of a unit file's text: key -> every value given, in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings
