"""The newest Home Assistant, installed in a cached Debian sid amd64 root, for the live tests.

Home Assistant's current releases need a newer Python than any Debian release has (2026.11
needs 3.14.2), so they run in a Debian sid root, entered with chroot (it shares the host's
network, so Home Assistant reaches the tests' mosquitto on 127.0.0.1). Two levels of cache
under ``build/ha/``, each rebuilt only when what shapes it changes:

1. ``roots/sid-<key>``: ``debootstrap --variant=minbase --include=python3,python3-venv,
   python3-pip,ca-certificates sid`` (tests/support/debian_roots.py; the key hashes that recipe);
2. ``homeassistant-<version>-<key>``: a copy of that root with a venv in ``/opt/homeassistant``
   holding ``homeassistant==<tests/ha/release.py CURRENT>`` (installed with uv, pinned there
   too) and every requirement Home Assistant would install at its first start
   (tests/ha/root_requirements.py: the frontend, the MQTT integration, ``aiohasupervisor``
   that its config flow imports, ...). Its key hashes
   the root's key, the pinned releases, :data:`DOMAINS`, root_requirements.py and
   :data:`INSTALL_VERSION`.

Each is built in a ``.build-*`` folder and renamed into place when complete, so an interrupted
build is never used. ``python -m tests.ha.installation`` builds what is missing and prints the
time of each step (``make test-ha`` runs it before the tests); logs are in ``build/ha/logs/``.
Needs root (debootstrap, chroot, mounting /proc).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.release import CURRENT, UV
from tests.support.debian_roots import (
    DEFAULT_MIRROR,
    HOST_CA,
    PYPI,
    Chroot,
    Recipe,
    RootError,
    base_root,
    cached_root,
    check_mirror,
    check_pypi,
    copy_host_network,
    copy_root,
    ensure_host_packages,
    folder_lock,
    last_lines,
    remove_stale_builds,
    remove_tree,
)

REPO = Path(__file__).resolve().parents[2]
HA_DIR = REPO / "build" / "ha"
ROOTS = HA_DIR / "roots"
LOGS = HA_DIR / "logs"
SUITE = "sid"
ARCH = "amd64"
VENV = "/opt/homeassistant"
STAMP = ".ha-recipe.json"
REQUIREMENTS_SCRIPT = Path(__file__).with_name("root_requirements.py")
# Bump when the installation steps change in a way the other key fields do not show.
INSTALL_VERSION = 1
# What the live tests set up besides what every start loads: configuration.yaml's sections and
# the MQTT integration (a config entry, loaded after the start).
DOMAINS = ("http", "logger", "mqtt")
# The integrations the tests rely on: their requirements must install.
NEEDED = ("http", "api", "websocket_api", "auth", "onboarding", "config", "frontend", "mqtt")
PREFIX = "test-ha:"
# A proxy, or a package index of one's own, reaches pip and uv in the root as on the host.
PASSED_THROUGH = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
)


def say(text: str) -> None:
    """Print one progress line."""
    print(f"{PREFIX} {text}", flush=True)


def mirror() -> str:
    """The Debian mirror debootstrap uses (HA_MIRROR names another)."""
    return os.environ.get("HA_MIRROR") or DEFAULT_MIRROR


def base_recipe() -> Recipe:
    """The recipe of the Debian sid amd64 base root."""
    return Recipe(SUITE, ARCH, mirror())


def install_fields(base: Recipe) -> dict[str, object]:
    """Everything that shapes the installation on top of the base root, as stored beside it."""
    return {
        "base": base.key(),
        "homeassistant": CURRENT,
        "uv": UV,
        "domains": list(DOMAINS),
        "requirements_script": hashlib.sha256(REQUIREMENTS_SCRIPT.read_bytes()).hexdigest(),
        "install_version": INSTALL_VERSION,
    }


def _key(fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Installation:
    """A root with Home Assistant installed in the venv at :data:`VENV`."""

    root: Chroot
    version: str


@dataclass
class Timings:
    """How long each step took: (step, seconds, note)."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)

    def add(self, step: str, started: float, note: str) -> None:
        """Record a step that began at `started` (time.monotonic())."""
        self.steps.append((step, time.monotonic() - started, note))


def install_env() -> dict[str, str]:
    """The variables pip and uv run with in the root: the CA bundle copied from the host (a
    proxy's CA included; uv reads no system store by itself) and the host's proxy settings."""
    env = {"SSL_CERT_FILE": str(HOST_CA), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    return env


def _run_step(root: Chroot, argv: list[str], log: Path, what: str, fix: str) -> str:
    """Run one installation step in the root; RootError naming `what`, its log and `fix`."""
    with root.mounted():
        done = root.run(argv, env=install_env(), log=log, timeout=1800)
    if done.returncode != 0:
        raise RootError(
            f"{what} failed in the {SUITE} root (exit {done.returncode}): {last_lines(log)}; "
            f"log: {log}. {fix}"
        )
    return done.stdout


def _install(scratch: Chroot) -> None:
    """homeassistant==CURRENT and what it installs at its first start, in a venv in `scratch`."""
    network = (
        "Check that PyPI answers from this machine (a proxy: set HTTPS_PROXY; its CA must be in "
        f"{HOST_CA})"
    )
    _run_step(
        scratch,
        ["python3", "-m", "venv", VENV],
        LOGS / "venv.log",
        "python3 -m venv",
        "The root's python3-venv is broken: delete build/ha and run again",
    )
    _run_step(
        scratch,
        [f"{VENV}/bin/pip", "install", "--no-input", "--progress-bar=off", f"uv=={UV}"],
        LOGS / "pip-uv.log",
        f"pip install uv=={UV}",
        network,
    )
    _run_step(
        scratch,
        [f"{VENV}/bin/python", "-m", "uv", "pip", "install", "--python", f"{VENV}/bin/python",
         f"homeassistant=={CURRENT}"],
        LOGS / "uv-homeassistant.log",
        f"uv pip install homeassistant=={CURRENT}",
        f"{network}, and that the root's Python meets the release's Requires-Python "
        "(tests/ha/release.py pins the release)",
    )  # fmt: skip
    script = scratch.host_path("/tmp/root_requirements.py")
    script.write_bytes(REQUIREMENTS_SCRIPT.read_bytes())
    _run_step(
        scratch,
        [f"{VENV}/bin/python", "/tmp/root_requirements.py", *DOMAINS, "--needed", *NEEDED],
        LOGS / "requirements.log",
        "installing the integrations' requirements",
        f"{network}; the log names the integration whose requirement failed",
    )
    script.unlink()
    # pip's and uv's download caches (~400 MB) are of no use in the cached root.
    shutil.rmtree(scratch.host_path("/root/.cache"), ignore_errors=True)
    version = _run_step(
        scratch,
        [f"{VENV}/bin/hass", "--version"],
        LOGS / "hass-version.log",
        "hass --version",
        "The installation is broken: delete build/ha and run again",
    ).strip()
    if version != CURRENT:
        raise RootError(f"the root's hass says it is {version!r}, not {CURRENT}: delete build/ha")


def cached_installation() -> Installation | None:
    """The finished installation of the current recipes, or None when it must be built."""
    recipe = base_recipe()
    fields = install_fields(recipe)
    target = HA_DIR / f"homeassistant-{CURRENT}-{_key(fields)}"
    stamp = target / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == fields:
        return Installation(Chroot(target), CURRENT)
    return None


def ensure_installation(report: Callable[[str], None] = say) -> tuple[Installation, Timings]:
    """The cached installation, built first when missing (`report` tells each step)."""
    if os.geteuid() != 0:
        raise RootError(
            "the live Home Assistant tests need root (debootstrap, chroot, mounting /proc in "
            "the root): run them as root, e.g. `sudo make test-ha`"
        )
    timings = Timings()
    with folder_lock(HA_DIR, f"{PREFIX} waiting: another run holds {HA_DIR}/.lock"):
        found = cached_installation()
        if found is not None:
            timings.steps.append(("Home Assistant root", 0.0, f"cached: {found.root.path}"))
            return found, timings
        recipe = base_recipe()
        started = time.monotonic()
        if cached_root(recipe, ROOTS) is None:
            ensure_host_packages(("debootstrap",), report)
            check_mirror(recipe.mirror, SUITE, "HA_MIRROR")
            report(f"building the Debian {SUITE} {ARCH} root (debootstrap)")
        base, reused = base_root(recipe, ROOTS, LOGS / "debootstrap.log")
        timings.add("Debian sid root", started, "cached" if reused else f"built {base.name}")
        report(f"Debian {SUITE} root: {'cached' if reused else 'built'} ({base.name})")

        started = time.monotonic()
        check_pypi(PYPI, f"the root's venv installs homeassistant=={CURRENT}")
        fields = install_fields(recipe)
        target = HA_DIR / f"homeassistant-{CURRENT}-{_key(fields)}"
        remove_stale_builds(HA_DIR, "homeassistant")
        for old in HA_DIR.glob("homeassistant-*"):  # other releases or recipes
            remove_tree(old)
        report(f"installing homeassistant=={CURRENT} in a copy of it")
        scratch = copy_root(base, HA_DIR / f".build-homeassistant-{os.getpid()}")
        try:
            copy_host_network(scratch)
            _install(scratch)
        except BaseException:
            remove_tree(scratch.path)
            raise
        (scratch.path / STAMP).write_text(json.dumps(fields, sort_keys=True))
        scratch.path.rename(target)
        timings.add("Home Assistant venv", started, f"built {target.name}")
        report(f"homeassistant=={CURRENT}: installed in {time.monotonic() - started:.0f} s")
        return Installation(Chroot(target), CURRENT), timings


def main() -> int:
    """Build or find the installation; print the steps' times. Exit 1 with one line on failure."""
    started = time.monotonic()
    try:
        _, timings = ensure_installation()
    except RootError as error:
        print(f"{PREFIX} cannot prepare Home Assistant {CURRENT}: {error}", flush=True)
        return 1
    for step, seconds, note in timings.steps:
        say(f"{step}: {seconds:.0f} s ({note})")
    say(f"Home Assistant {CURRENT} ready in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
