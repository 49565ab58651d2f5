"""Debian arm64 roots for the board lane: tests/support/debian_roots.py, run through qemu.

Base roots are cached under ``build/arm64/roots/<suite>-<recipe key>`` (see
:func:`tests.support.debian_roots.base_root`). Every lane run copies the base root to
``build/arm64/work/<suite>`` and installs the project there from scratch, as a user would on a
fresh board. Programs in a root run through ``chroot`` (binfmt_misc hands the aarch64 binaries
to qemu-user-static) with an empty environment but for ``QEMU_CPU`` (see :data:`QEMU_CPU`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import debian_roots
from tests.support.debian_roots import (
    DEFAULT_MIRROR,
    Recipe,
    last_lines,
    unmount_all_under,
)
from tests.support.debian_roots import RootError as LaneError

__all__ = [
    "DEFAULT_MIRROR",
    "LANE_DIR",
    "LOGS",
    "REPO",
    "ROOTS",
    "WORK",
    "Chroot",
    "LaneError",
    "Recipe",
    "base_root",
    "copy_working_tree",
    "fresh_copy",
    "last_lines",
    "recipe",
    "unmount_all_under",
]

REPO = Path(__file__).resolve().parents[2]
LANE_DIR = REPO / "build" / "arm64"
ROOTS = LANE_DIR / "roots"
WORK = LANE_DIR / "work"
LOGS = LANE_DIR / "logs"
# The CPU qemu-user emulates (it reads QEMU_CPU at every exec): the Raspberry Pi 4's core, ARMv8.0
# without pointer authentication. qemu's default, "max", emulates pointer authentication in
# software, and Debian 13 builds everything with it (-mbranch-protection): Trixie's python3 ran
# 13x slower on "max" than here. ARM64_QEMU_CPU picks another (cortex-a76: a Pi 5).
QEMU_CPU = os.environ.get("ARM64_QEMU_CPU") or "cortex-a72"
BINFMT_HINT = (
    "qemu-aarch64 is registered with binfmt_misc and runs binaries "
    "(ls /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)"
)


@dataclass(frozen=True)
class Chroot(debian_roots.Chroot):
    """An arm64 root whose programs run through qemu-user as :data:`QEMU_CPU`."""

    def environment(self) -> dict[str, str]:
        """The root's login environment plus ``QEMU_CPU``."""
        return {**super().environment(), "QEMU_CPU": QEMU_CPU}


def recipe(suite: str, mirror: str = DEFAULT_MIRROR) -> Recipe:
    """The base root recipe of one suite of the lane."""
    return Recipe(suite, "arm64", mirror)


def base_root(wanted: Recipe, log: Path) -> tuple[Path, bool]:
    """The cached base root of `wanted`, built first when missing; (folder, was it reused)."""
    return debian_roots.base_root(
        wanted, ROOTS, log, chroot=Chroot, env={"QEMU_CPU": QEMU_CPU}, hint=BINFMT_HINT
    )


def fresh_copy(base: Path, suite: str) -> Chroot:
    """A new work root copied from `base` (the previous one of `suite` deleted first)."""
    root = debian_roots.copy_root(base, WORK / suite, chroot=Chroot)
    assert isinstance(root, Chroot)
    return root


def copy_working_tree(target: Path) -> None:
    """Copy the project as a clone has it (tracked and new files, nothing git ignores)."""
    target.mkdir(parents=True, exist_ok=True)
    if (REPO / ".git").exists():
        listed = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout
        for name in filter(None, listed.decode().split("\0")):
            source = REPO / name
            if source.is_file():  # listed but deleted in the working tree: skip
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:  # an unpacked archive: everything but the generated folders
        shutil.copytree(
            REPO,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".venvs", "build", "__pycache__", "*.egg-info"),
        )
