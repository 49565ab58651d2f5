"""Fixtures of the board lane: the Debian arm64 root under test and what it must end up with.

These tests run on the host, inside `make test-arm64` (tests/arm64/lane.py), which builds the
root, installs the project into it and mounts /proc while they run. Run alone, they skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.arm64.plan import SUITES, Suite
from tests.arm64.roots import LOGS, Chroot

VENV = "/opt/personalizer/venv"


@pytest.fixture(scope="session")
def root() -> Chroot:
    """The root that scripts/install.sh installed into."""
    path = os.environ.get("PERSONALIZER_ARM64_ROOT")
    if not path:
        pytest.skip("the arm64 tests run inside `make test-arm64`, which builds their root")
    return Chroot(Path(path))


@pytest.fixture(scope="session")
def suite(root: Chroot) -> Suite:
    """The Debian release of the root and its expectations."""
    return SUITES[os.environ["PERSONALIZER_ARM64_SUITE"]]


@pytest.fixture(scope="session")
def install_log(root: Chroot) -> str:
    """What scripts/install.sh printed in this root."""
    return Path(os.environ["PERSONALIZER_ARM64_INSTALL_LOG"]).read_text(errors="replace")


@pytest.fixture(scope="session")
def logs(suite: Suite) -> Path:
    """Where the tests leave their logs (build/arm64/logs)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS
