"""``make test-arm64``: the project installed and tested on Debian 12 and 13 arm64 roots.

For each suite of :data:`tests.arm64.plan.SUITES`, in parallel:

1. the cached debootstrap root (built first when missing: :mod:`tests.arm64.roots`),
2. a fresh copy of it with the working tree in ``/src`` and the host's resolv.conf and CA bundle,
3. ``scripts/install.sh`` run in it as root, as a user runs it on a board,
4. the host-side tests of tests/arm64 against that root (they run the installed aarch64 venv:
   the runtime tests, the daemon against a mosquitto on the host, the Docker image's pins).

Bundles are converted on the host (x86, TensorFlow) meanwhile and copied into the roots.
Needs root; as another user it prints one line saying what it skipped and exits 0. A lane that
cannot start says why in one line and exits 1. Logs: build/arm64/logs/.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

from tests.arm64.plan import RUNTIME_TESTS, SUITES, Suite
from tests.arm64.roots import (
    DEFAULT_MIRROR,
    LANE_DIR,
    LOGS,
    REPO,
    Chroot,
    LaneError,
    base_root,
    copy_working_tree,
    fresh_copy,
    last_lines,
    recipe,
    unmount_all_under,
)
from tests.support.debian_roots import (
    PYPI,
    check_mirror,
    check_pypi,
    copy_host_network,
    ensure_host_packages,
)

HOST_PACKAGES = ("qemu-user-static", "binfmt-support", "debootstrap")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
BUNDLES = REPO / "build" / "test-bundles"
PREFIX = "test-arm64:"

_print_lock = threading.Lock()


# pytest-timeout for the lane's tests: emulated Python is 20-50x slower than the host.
EMULATED_TIMEOUT = 2400


def say(text: str) -> None:
    """Print one progress line (whole, even from two threads)."""
    with _print_lock:
        print(f"{PREFIX} {text}", flush=True)


def take_lock() -> IO[str]:
    """Hold build/arm64/.lock: two lanes at once would unmount and delete each other's roots."""
    LANE_DIR.mkdir(parents=True, exist_ok=True)
    handle = (LANE_DIR / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LaneError(
            "another `make test-arm64` is running on this checkout (it holds build/arm64/.lock): "
            "wait for it to finish"
        ) from None
    return handle


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu-aarch64 registered, enabled and usable inside a chroot."""
    if not (BINFMT / "status").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise LaneError(
                f"binfmt_misc cannot be mounted at {BINFMT} ({done.stderr.strip()}): aarch64 "
                "binaries cannot run here; use a host, VM or privileged container where "
                f"`mount -t binfmt_misc binfmt_misc {BINFMT}` works"
            )
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        # qemu-user-static's postinst registers it, but only when binfmt_misc was mounted then.
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        raise LaneError(
            "qemu-aarch64 is not registered with binfmt_misc: run "
            "`update-binfmts --enable qemu-aarch64` (or reinstall qemu-user-static)"
        )
    flags = next((ln for ln in entry.read_text().splitlines() if ln.startswith("flags:")), "")
    if "F" not in flags.split(":", 1)[-1]:
        raise LaneError(
            f"qemu-aarch64 is registered without the F (fix binary) flag ({flags.strip()}), so "
            "it cannot run inside a chroot: re-register it with qemu-user-static's entry "
            "(update-binfmts --disable qemu-aarch64; update-binfmts --enable qemu-aarch64)"
        )


def check_reachable(mirror: str, suites: list[str]) -> None:
    """The Debian mirror serves every suite, and PyPI answers (install.sh needs both)."""
    for suite in suites:
        check_mirror(mirror, suite, "ARM64_MIRROR")
    check_pypi(PYPI, "scripts/install.sh installs the daemon's packages")


@dataclass
class Outcome:
    """What happened to one suite: step timings and the failure, if any."""

    suite: Suite
    steps: list[tuple[str, float, str]] = field(default_factory=list)
    failure: str | None = None
    test_log: Path | None = None

    def step(self, name: str, started: float, note: str = "") -> None:
        """Record a finished step and say so."""
        seconds = time.monotonic() - started
        self.steps.append((name, seconds, note))
        say(f"[{self.suite.name}] {name}: {seconds:.0f} s{f' ({note})' if note else ''}")


def build_bundles(done: threading.Event, result: dict[str, str]) -> None:
    """Convert the bundles the runtime tests need (pytest --setup-only runs their fixtures)."""
    log = LOGS / "bundles.log"
    started = time.monotonic()
    try:
        with log.open("w") as out:
            code = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                 "--timeout", str(EMULATED_TIMEOUT), "--setup-only", *RUNTIME_TESTS],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False,
            ).returncode  # fmt: skip
        if code != 0:
            result["error"] = (
                f"building the test bundles on the host failed (exit {code}): "
                f"{last_lines(log)}; log: {log}"
            )
        else:
            say(f"bundles: ready on the host in {time.monotonic() - started:.0f} s")
    finally:
        done.set()


def prepare_root(suite: Suite, mirror: str, outcome: Outcome) -> Chroot:
    """The cached base root, a fresh copy of it, and the project installed by install.sh."""
    started = time.monotonic()
    base, reused = base_root(recipe(suite.name, mirror), LOGS / f"{suite.name}-debootstrap.log")
    outcome.step("debootstrap root", started, "cached" if reused else f"built {base.name}")

    started = time.monotonic()
    root = fresh_copy(base, suite.name)
    copy_host_network(root)
    copy_working_tree(root.host_path("/src"))
    outcome.step("fresh copy with the working tree in /src", started)

    started = time.monotonic()
    log = LOGS / f"{suite.name}-install.log"
    with root.mounted():
        # --stream: PyAV too, so its aarch64 wheels are proven on both Pythons.
        done = root.run(["scripts/install.sh", "--stream"], cwd="/src", log=log, timeout=3600)
    if done.returncode != 0:
        raise LaneError(
            f"scripts/install.sh failed in the {suite.name} root (exit {done.returncode}): "
            f"{last_lines(log)}; log: {log}"
        )
    chosen = next(
        (ln.split(":", 1)[1].strip() for ln in done.stdout.splitlines() if "interpreter:" in ln),
        "?",
    )
    outcome.step("scripts/install.sh", started, f"interpreter: {chosen}")
    return root


def run_tests(suite: Suite, root: Chroot, outcome: Outcome) -> None:
    """The host-side tests of tests/arm64 against `root`, with /proc mounted in it."""
    target = root.host_path("/src/build/test-bundles")
    shutil.copytree(BUNDLES, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".build-*"))
    started = time.monotonic()
    log = LOGS / f"{suite.name}-tests.log"
    env = {
        **os.environ,
        "PERSONALIZER_ARM64_ROOT": str(root.path),
        "PERSONALIZER_ARM64_SUITE": suite.name,
        "PERSONALIZER_ARM64_INSTALL_LOG": str(LOGS / f"{suite.name}-install.log"),
    }
    with root.mounted(), log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
             "--timeout", str(EMULATED_TIMEOUT), "--durations=5", *suite.test_files()],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        ).returncode  # fmt: skip
    outcome.test_log = log
    summary = last_lines(log, 1)
    outcome.step("tests/arm64", started, summary)
    if code != 0:
        raise LaneError(f"tests failed in the {suite.name} root: {summary}; log: {log}")


def run_suite(
    suite: Suite, mirror: str, bundles_ready: threading.Event, bundles: dict[str, str]
) -> Outcome:
    """The whole lane for one suite; failures end up in the outcome, not as exceptions."""
    outcome = Outcome(suite)
    try:
        root = prepare_root(suite, mirror, outcome)
        bundles_ready.wait()
        if "error" in bundles:
            raise LaneError(bundles["error"])
        run_tests(suite, root, outcome)
    except LaneError as error:
        outcome.failure = str(error)
    except Exception as error:  # a bug of the lane itself: still report, still clean up
        outcome.failure = f"{type(error).__name__}: {error}"
    return outcome


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the lane; the exit status is 0 when every suite passed (or the lane was skipped)."""
    parser = argparse.ArgumentParser(prog="make test-arm64", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--suites", default=",".join(SUITES), help="comma-separated: bookworm,trixie"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print(
            f"{PREFIX} skipped: it needs root (debootstrap, chroot, mounting /proc and "
            "binfmt_misc); run `sudo make test-arm64`",
            flush=True,
        )
        return 0
    names = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    mirror = os.environ.get("ARM64_MIRROR") or DEFAULT_MIRROR
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        lock = take_lock()  # noqa: F841 (held until the process exits)
        unmount_all_under(LANE_DIR)  # whatever a killed run left
        ensure_host_packages(HOST_PACKAGES, say)
        ensure_binfmt()
        check_reachable(mirror, names)
    except LaneError as error:
        print(f"{PREFIX} cannot start: {error}", flush=True)
        return 1
    say(f"suites {', '.join(names)} in parallel; logs in {LOGS.relative_to(REPO)}/")
    bundles_ready, bundles = threading.Event(), {}
    threads = [threading.Thread(target=build_bundles, args=(bundles_ready, bundles), daemon=True)]
    outcomes: dict[str, Outcome] = {}

    def worker(name: str) -> None:
        outcomes[name] = run_suite(SUITES[name], mirror, bundles_ready, bundles)

    threads += [threading.Thread(target=worker, args=(n,), daemon=True) for n in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        unmount_all_under(LANE_DIR)
    failed = False
    for name in names:
        outcome = outcomes.get(name)
        if outcome is None or outcome.failure:
            failed = True
            say(f"[{name}] FAILED: {outcome.failure if outcome else 'did not finish'}")
            if outcome and outcome.test_log and outcome.test_log.is_file():
                tail = outcome.test_log.read_text(errors="replace").splitlines()[-60:]
                print("\n".join(tail), flush=True)
        else:
            say(f"[{name}] passed")
    say(f"{'FAILED' if failed else 'passed'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
