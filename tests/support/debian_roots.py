"""Debian roots for tests: built with debootstrap, cached, entered with chroot.

A *base root* is what ``debootstrap --arch=ARCH --variant=minbase`` makes for one suite. It is
cached as ``<roots folder>/<suite>-<recipe key>``, where the key hashes everything that shapes it
(suite, architecture, packages, mirror, :data:`RECIPE_VERSION`): a changed recipe builds a new
root, an unchanged one is reused. A root is built in a ``.build-<suite>-<pid>`` folder and renamed
into place only when debootstrap finished and its python3 ran as the expected machine, so an
interrupted build is never reused (the next run deletes it).

Programs in a root run through ``chroot`` with an empty environment but for :data:`ROOT_ENV`
(and what :meth:`Chroot.environment` adds, e.g. the CPU qemu-user emulates for arm64 roots).
``/proc`` is mounted only while something runs and always unmounted afterwards, and a folder is
deleted only after every mount under it is gone. Users: the board lane (tests/arm64, arm64 roots
through qemu) and the live Home Assistant tests (tests/ha, a native amd64 root).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Bump when the way a base root is made changes in a way the other recipe fields do not show.
RECIPE_VERSION = 1
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
RECIPE_FILE = ".lane-recipe.json"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PYPI = "https://pypi.org/simple/pip/"
# What `platform.machine()` says in a root of each Debian architecture.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l", "i386": "i686"}
# What a login shell on a fresh Debian gives root; nothing of the host's environment leaks in.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


class RootError(RuntimeError):
    """A root cannot be made or used; the message is one line: what happened, what to do."""


@dataclass(frozen=True)
class Recipe:
    """How the base root of one Debian suite and architecture is made."""

    suite: str
    arch: str
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = PACKAGES
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
        raise RootError(f"cannot unmount {', '.join(map(str, left))}: unmount it by hand")


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


def remove_stale_builds(folder: Path, prefix: str) -> None:
    """Delete ``<folder>/.build-<prefix>-<pid>`` folders whose build process is gone."""
    for scratch in folder.glob(f".build-{prefix}-*"):
        pid = scratch.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid()):
            remove_tree(scratch)


def last_lines(log: Path, count: int = 3) -> str:
    """The last non-empty lines of a log file, joined into one line."""
    if not log.is_file():
        return "(no log)"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(empty log)"


@contextmanager
def folder_lock(folder: Path, waiting: str) -> Iterator[IO[str]]:
    """Hold ``<folder>/.lock`` for the block; when another process holds it, say `waiting`
    (printed once) and wait: two builds at once would delete each other's roots."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_host_network(root: Chroot) -> None:
    """The network as the host sees it: name servers, and the CA bundle (a proxy's CA included)."""
    shutil.copyfile("/etc/resolv.conf", root.host_path("/etc/resolv.conf"))
    shutil.copyfile(HOST_CA, root.host_path(str(HOST_CA)))


@dataclass(frozen=True)
class Chroot:
    """A root folder and how to run programs inside it."""

    path: Path

    def environment(self) -> dict[str, str]:
        """The variables every program in the root starts with (before its own `env`)."""
        return dict(ROOT_ENV)

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
        env: Mapping[str, str] | None = None,
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
        variables = {**self.environment(), **(env or {})}
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
        env: Mapping[str, str] | None = None,
        timeout: float = 1800,
        log: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the root (see :meth:`command`); output captured, or written to `log`."""
        command = self.command(argv, user=user, groups=groups, cwd=cwd, env=env)
        if log is None:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        # Each line stamped with the seconds since the start: where the time goes.
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


def cached_root(recipe: Recipe, roots: Path) -> Path | None:
    """The finished base root of `recipe` in `roots`, or None when it must be built."""
    target = roots / f"{recipe.suite}-{recipe.key()}"
    stamp = target / RECIPE_FILE
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe.fields():
        return target
    return None


def base_root(
    recipe: Recipe,
    roots: Path,
    log: Path,
    *,
    chroot: type[Chroot] = Chroot,
    env: Mapping[str, str] | None = None,
    hint: str = "",
) -> tuple[Path, bool]:
    """The cached base root of `recipe` in the folder `roots`, built first when missing.

    Returns (folder, was it reused). Other roots of the same suite in `roots` (other recipes)
    are deleted. `chroot` is how the new root's python3 is run to check it, `env` extra
    variables for debootstrap, and `hint` what else to check when debootstrap fails or the
    root's python3 does not run as the recipe's machine (for arm64: qemu's binfmt entry).
    """
    cached = cached_root(recipe, roots)
    if cached is not None:
        return cached, True
    target = roots / f"{recipe.suite}-{recipe.key()}"
    roots.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(roots, recipe.suite)
    for old in roots.glob(f"{recipe.suite}-*"):  # other recipes, or a root without its stamp
        remove_tree(old)
    scratch = roots / f".build-{recipe.suite}-{os.getpid()}"
    remove_tree(scratch)
    log.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("debootstrap") is None:
        raise RootError(
            "debootstrap is not installed: apt-get install debootstrap (it builds the "
            f"Debian {recipe.suite} {recipe.arch} root)"
        )
    with log.open("w") as out:
        done = subprocess.run(
            recipe.debootstrap(scratch),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
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
        raise RootError(
            f"debootstrap {recipe.suite} {recipe.arch} failed (exit {done.returncode}): "
            f"{detail}; full log: {log}. Check that {recipe.mirror} serves {recipe.suite} for "
            f"{recipe.arch}{f' and that {hint}' if hint else ''}"
        )
    root = chroot(scratch)
    machine = MACHINES.get(recipe.arch, recipe.arch)
    with root.mounted():
        check = root.run(["python3", "-c", "import platform; print(platform.machine())"])
    if check.returncode != 0 or check.stdout.strip() != machine:
        remove_tree(scratch)
        raise RootError(
            f"the new {recipe.suite} root's python3 does not run as {machine} "
            f"({check.stdout.strip()} {check.stderr.strip()[-300:]})"
            f"{f': check that {hint}' if hint else ''}"
        )
    (scratch / RECIPE_FILE).write_text(json.dumps(recipe.fields(), sort_keys=True))
    scratch.rename(target)
    return target, False


def copy_root(base: Path, target: Path, chroot: type[Chroot] = Chroot) -> Chroot:
    """A new root at `target` copied from `base` (whatever was at `target` deleted first)."""
    remove_tree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(target)], check=True)
    (target / RECIPE_FILE).unlink(missing_ok=True)
    return chroot(target)


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.endswith(" installed")


def ensure_host_packages(packages: Sequence[str], say: Callable[[str], None]) -> None:
    """The host's Debian `packages`, installed with apt-get when missing (`say` tells so)."""
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        raise RootError(
            f"this host has no apt/dpkg: install {', '.join(packages)} by hand, or run the "
            "tests on Debian/Ubuntu"
        )
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    say(f"installing with apt-get: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *missing],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            raise RootError(
                f"`{' '.join(command)}` failed (exit {done.returncode}: {' '.join(detail)}): "
                f"fix apt, then install them yourself: apt-get install {' '.join(missing)}"
            )


def check_mirror(mirror: str, suite: str, variable: str) -> None:
    """The Debian `mirror` serves `suite` (debootstrap and apt need it); `variable` is the
    environment variable that names another mirror."""
    url = f"{mirror}/dists/{suite}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            answer.read(64)
    except urllib.error.HTTPError as error:
        raise RootError(
            f"the Debian mirror {mirror} does not serve {suite} ({url}: HTTP {error.code}): "
            f"set {variable} to a full Debian mirror"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise RootError(
            f"the Debian mirror is unreachable: {url}: {error}; debootstrap and apt need "
            f"it: fix the network, or set {variable}=http://<a reachable Debian mirror>"
        ) from None


def check_pypi(index: str, needed_for: str) -> None:
    """PyPI (or the package index at `index`) answers; `needed_for` says what needs it."""
    try:
        with urllib.request.urlopen(index, timeout=30) as answer:
            answer.read(64)
    except (urllib.error.URLError, OSError) as error:
        raise RootError(
            f"PyPI is unreachable ({index}: {error}); {needed_for} from it: fix the network"
        ) from None
