"""Debian arm64 roots for the board lane: built with debootstrap, cached, entered with chroot.

A *base root* is what ``debootstrap --arch=arm64 --variant=minbase`` makes for one suite. It is
cached under ``build/arm64/roots/<suite>-<recipe key>``, where the key hashes everything that
shapes it (suite, packages, mirror, :data:`RECIPE_VERSION`): a changed recipe builds a new root,
an unchanged one is reused. A root is built in a ``.build-<suite>-<pid>`` folder and renamed into
place only when debootstrap finished and its python3 ran, so an interrupted build is never
reused (the next run deletes it).

Every lane run copies the base root to ``build/arm64/work/<suite>`` and installs the project
there from scratch, as a user would on a fresh board. Programs in a root run through ``chroot``
(binfmt_misc hands the aarch64 binaries to qemu-user-static) with an empty environment but for
``QEMU_CPU`` (see :data:`QEMU_CPU`). ``/proc`` is mounted only while something runs and always
unmounted afterwards, and a folder is deleted only after every mount under it is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LANE_DIR = REPO / "build" / "arm64"
ROOTS = LANE_DIR / "roots"
WORK = LANE_DIR / "work"
LOGS = LANE_DIR / "logs"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bump when the way a base root is made changes in a way the other recipe fields do not show.
RECIPE_VERSION = 1
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
RECIPE_FILE = ".lane-recipe.json"
# The CPU qemu-user emulates (it reads QEMU_CPU at every exec): the Raspberry Pi 4's core, ARMv8.0
# without pointer authentication. qemu's default, "max", emulates pointer authentication in
# software, and Debian 13 builds everything with it (-mbranch-protection): Trixie's python3 ran
# 13x slower on "max" than here. ARM64_QEMU_CPU picks another (cortex-a76: a Pi 5).
QEMU_CPU = os.environ.get("ARM64_QEMU_CPU") or "cortex-a72"
# What a login shell on a fresh Debian gives root; nothing of the host's environment leaks in.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "QEMU_CPU": QEMU_CPU,
}


class LaneError(RuntimeError):
    """The lane cannot go on; the message is one line saying what happened and what to do."""


@dataclass(frozen=True)
class Recipe:
    """How the base root of one Debian suite is made."""

    suite: str
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = PACKAGES
    arch: str = "arm64"
    variant: str = "minbase"

    def fields(self) -> dict[str, object]:
        """Everything that shapes the root, as stored next to it."""
        return {
            "suite": self.suite,
            "mirror": self.mirror,
            "packages": list(self.packages),
            "arch": self.arch,
            "variant": self.variant,
            "recipe_version": RECIPE_VERSION,
        }

    def key(self) -> str:
        """A short hash of :meth:`fields`: the cache key."""
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def debootstrap(self, target: Path) -> list[str]:
        """The debootstrap command that builds this root into `target`."""
        return [
            "debootstrap",
            f"--arch={self.arch}",
            f"--variant={self.variant}",
            f"--include={','.join(self.packages)}",
            self.suite,
            str(target),
            self.mirror,
        ]


def _unescape(field: str) -> str:
    """A mount point from /proc/self/mountinfo, where space, tab, \\ and newline are octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first."""
    base = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = _unescape(line.split()[4])
            if point == base or point.startswith(base + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all_under(path: Path) -> None:
    """Unmount everything mounted at or below `path` (left by an interrupted run)."""
    for point in mounts_under(path):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(point)], capture_output=True)
    left = mounts_under(path)
    if left:
        raise LaneError(f"cannot unmount {', '.join(map(str, left))}: unmount it by hand")


def remove_tree(path: Path) -> None:
    """Delete `path` once nothing is mounted below it (never deletes through a mount)."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_all_under(path)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_builds(suite: str) -> None:
    """Delete half-built roots of `suite` whose build process is gone, and superseded roots."""
    for folder in ROOTS.glob(f".build-{suite}-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid()):
            remove_tree(folder)


def last_lines(log: Path, count: int = 3) -> str:
    """The last non-empty lines of a log file, joined into one line."""
    if not log.is_file():
        return "(no log)"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(empty log)"


def base_root(recipe: Recipe, log: Path) -> tuple[Path, bool]:
    """The cached base root of `recipe`, built first when missing; (folder, was it reused)."""
    target = ROOTS / f"{recipe.suite}-{recipe.key()}"
    stamp = target / RECIPE_FILE
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe.fields():
        return target, True
    ROOTS.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(recipe.suite)
    for old in ROOTS.glob(f"{recipe.suite}-*"):  # other recipes, or a root without its stamp
        remove_tree(old)
    scratch = ROOTS / f".build-{recipe.suite}-{os.getpid()}"
    remove_tree(scratch)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(
            recipe.debootstrap(scratch),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "QEMU_CPU": QEMU_CPU},
            check=False,
        )
    # debootstrap mounts /proc and /sys in the root while it works; a failed run can leave them.
    unmount_all_under(scratch)
    if done.returncode != 0:
        # debootstrap says what went wrong in "E: ..." lines; its own log has the failing step.
        lines = log.read_text(errors="replace").splitlines()
        errors = [line.strip() for line in lines if line.startswith("E: ")]
        inner = scratch / "debootstrap" / "debootstrap.log"
        detail = " | ".join(errors[-2:]) or last_lines(inner if inner.is_file() else log)
        remove_tree(scratch)
        raise LaneError(
            f"debootstrap {recipe.suite} failed (exit {done.returncode}): {detail}; full log: "
            f"{log}. Check that {recipe.mirror} serves {recipe.suite} for arm64 and that "
            "qemu-aarch64 runs binaries (ls /proc/sys/fs/binfmt_misc)"
        )
    root = Chroot(scratch)
    with root.mounted():
        check = root.run(["python3", "-c", "import platform; print(platform.machine())"])
    if check.returncode != 0 or check.stdout.strip() != "aarch64":
        remove_tree(scratch)
        raise LaneError(
            f"the new {recipe.suite} root's python3 does not run as aarch64 "
            f"({check.stdout.strip()} {check.stderr.strip()[-300:]}): is qemu-aarch64 "
            "registered with binfmt_misc (update-binfmts --enable qemu-aarch64)?"
        )
    (scratch / RECIPE_FILE).write_text(json.dumps(recipe.fields(), sort_keys=True))
    scratch.rename(target)
    return target, False


def fresh_copy(base: Path, suite: str) -> Chroot:
    """A new work root copied from `base` (the previous one of `suite` deleted first)."""
    target = WORK / suite
    remove_tree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(target)], check=True)
    (target / RECIPE_FILE).unlink()
    return Chroot(target)


@dataclass(frozen=True)
class Chroot:
    """A root folder and how to run programs inside it."""

    path: Path

    def host_path(self, inner: str | Path) -> Path:
        """Where the path `inner` of the root is on the host."""
        return self.path / str(inner).lstrip("/")

    @contextmanager
    def mounted(self) -> Iterator[Chroot]:
        """/proc mounted inside the root for the duration of the block (nested blocks share it)."""
        proc = self.host_path("/proc")
        if proc in mounts_under(proc):
            yield self
            return
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
        try:
            yield self
        finally:
            if subprocess.run(["umount", str(proc)], capture_output=True).returncode != 0:
                time.sleep(1)  # a process that just exited may still hold it
                subprocess.run(["umount", "--lazy", str(proc)], check=False)

    def ids(self, user: str) -> tuple[int, int]:
        """(uid, gid) of `user` in the root's /etc/passwd."""
        for line in self.host_path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise KeyError(f"no user {user!r} in {self.host_path('/etc/passwd')}")

    def gid(self, group: str) -> int:
        """The id of `group` in the root's /etc/group."""
        for line in self.host_path("/etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group:
                return int(fields[2])
        raise KeyError(f"no group {group!r} in {self.host_path('/etc/group')}")

    def command(
        self,
        argv: Sequence[str],
        user: str | None = None,
        groups: Sequence[str] = (),
        cwd: str = "/",
        env: dict[str, str] | None = None,
    ) -> list[str]:
        """The host command that runs `argv` in the root, with only `env` (and a root PATH).

        `user` and `groups` are names in the root, passed to chroot as numbers so the host's
        user database plays no part.
        """
        prefix = ["chroot"]
        if user is not None:
            uid, gid = self.ids(user)
            prefix.append(f"--userspec={uid}:{gid}")
            if groups:
                prefix.append("--groups=" + ",".join(str(self.gid(g)) for g in groups))
        variables = {**ROOT_ENV, **(env or {})}
        return [
            *prefix,
            str(self.path),
            "/usr/bin/env",
            "-i",
            "-C",
            cwd,
            *(f"{name}={value}" for name, value in variables.items()),
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        groups: Sequence[str] = (),
        cwd: str = "/",
        env: dict[str, str] | None = None,
        timeout: float = 1800,
        log: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the root (see :meth:`command`); output captured, or written to `log`."""
        command = self.command(argv, user=user, groups=groups, cwd=cwd, env=env)
        if log is None:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        # Each line stamped with the seconds since the start: where emulated time goes.
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        lines = []
        with (
            log.open("w") as out,
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            ) as process,
        ):
            assert process.stdout is not None
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                process.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                for line in process.stdout:
                    lines.append(line)
                    out.write(f"[{time.monotonic() - started:7.1f}s] {line}")
                    out.flush()
            finally:
                timer.cancel()
            code = process.wait()
            if timed_out.is_set():
                lines.append(f"killed: still running after {timeout:.0f} s\n")
                out.write(lines[-1])
        return subprocess.CompletedProcess(command, code, "".join(lines), "")


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
