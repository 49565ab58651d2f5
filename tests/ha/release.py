"""The Home Assistant releases the project is tested against.

The newest one is pinned here and nowhere else: the live tests install it in a Debian sid root
(tests/ha/installation.py). Bump it when Home Assistant releases; the cached installation is
rebuilt by itself because the pin is part of its cache key. The oldest supported release
(2024.1.x, the last for Python 3.11) is the Makefile's `.venvs/ha`, where
tests/ha/test_discovery_in_home_assistant.py checks every discovery config with its schemas.
"""

from __future__ import annotations

# Needs Python >= 3.14.2: Debian sid (3.14) has it, no Debian release does yet.
CURRENT = "2026.11.0"
# The uv that release requires (Home Assistant installs its integrations' packages with it); it
# installs Home Assistant itself too, in half pip's time. Bump with CURRENT.
UV = "0.13.5"
