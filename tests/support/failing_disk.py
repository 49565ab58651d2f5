"""A disk that fails on demand under the real daemon: an LD_PRELOAD library built here.

The fault tests start `personalizer run` with :func:`environment`; then :class:`FailingDisk`
makes every write and sync of the state folder's files fail with ENOSPC or EIO (while its
control file exists), at the C library level, so SQLite meets the failure exactly as on a
full or failing SD card.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().with_name("failing_disk.c")
BUILD = Path(__file__).resolve().parents[2] / "build" / "test-shims"


def library() -> Path:
    """The shim, compiled on first use (cached by its source's hash)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    target = BUILD / f"failing_disk-{digest}.so"
    if not target.is_file():
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("the disk fault tests need a C compiler (apt install gcc)")
        BUILD.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
            check=True,
            capture_output=True,
        )
        partial.rename(target)
    return target


class FailingDisk:
    """Switches the failures of one folder on and off."""

    def __init__(self, folder: Path, control: Path) -> None:
        self.folder = folder.resolve()
        self.control = control

    def environment(self, counter: Path | None = None) -> dict[str, str]:
        """What the daemon's process needs in its environment; with ``counter``, the bytes
        written to the folder are added up there (see :func:`read_counter`)."""
        env = {
            "LD_PRELOAD": str(library()),
            "FAILING_DISK_DIR": str(self.folder),
            "FAILING_DISK_CONTROL": str(self.control),
        }
        if counter is not None:
            counter.write_bytes(b"\0" * 8)
            env["FAILING_DISK_COUNTER"] = str(counter)
        return env

    def fail(self, code: int = errno.ENOSPC) -> None:
        """From now on, writes and syncs fail with ``code``."""
        self.control.write_text(str(code))

    def heal(self) -> None:
        """The disk works again."""
        self.control.unlink(missing_ok=True)


def read_counter(counter: Path) -> int:
    """The bytes written to the folder so far (see FailingDisk.environment)."""
    return int.from_bytes(counter.read_bytes()[:8], "little")
