"""The arm64 Docker image's Python layer, proven on aarch64 without a container engine.

Dockerfile.arm64 installs docker/requirements-arm64.txt into python:3.11-slim-bookworm and then
the daemon with ``--no-deps``, so the pins must be complete. Here the same two steps run in a
plain venv of the bookworm root's Python 3.11; then every pinned distribution must be installed
at its pin, ``pip check`` must find nothing missing, and every top-level module of every pinned
distribution must import. Nothing is listed by hand: a new pin is checked by adding it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.arm64.roots import Chroot

IMAGE_VENV = "/opt/image-venv"
REQUIREMENTS = "/src/docker/requirements-arm64.txt"
PIP = [f"{IMAGE_VENV}/bin/python", "-m", "pip", "--disable-pip-version-check"]

# Run by the image venv's python: pins, what is installed, and which top-level modules import.
IMPORT_EVERY_PIN = r"""
import importlib, importlib.metadata as md, json, re, sys

def top_level(dist):
    text = dist.read_text("top_level.txt")
    names = set(text.split()) if text else set()
    if not names:
        for path in dist.files or ():
            first = path.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__"):
                continue
            if len(path.parts) == 1:
                if first.endswith(".py"):
                    names.add(first[:-3])
                elif ".so" in first:
                    names.add(first.split(".")[0])
            else:
                names.add(first)
    return sorted(n for n in names if n.isidentifier())

pins, report = {}, {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        name, _, version = re.split(r"\s*;", line)[0].partition("==")
        pins[name.strip()] = version.strip()
for name, pinned in pins.items():
    entry = report[name] = {"pinned": pinned, "failed": {}}
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        entry["installed"] = None
        continue
    entry["installed"] = dist.version
    entry["modules"] = top_level(dist)
    for module in entry["modules"]:
        try:
            importlib.import_module(module)
        except Exception as error:
            entry["failed"][module] = f"{type(error).__name__}: {error}"
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def image_venv(root: Chroot) -> Iterator[Chroot]:
    """A plain venv (no system packages) with the image's pins, then the daemon without deps.

    ``--no-compile``: byte-compiling every installed module under emulation cost 40 s of this
    step's 195 s; the imports below compile what they load.
    """
    steps = [
        ["python3", "-m", "venv", IMAGE_VENV],
        [*PIP, "install", "-q", "--no-compile", "--requirement", REQUIREMENTS],
        [*PIP, "install", "-q", "--no-compile", "--no-deps", "/src/daemon"],
    ]
    for step in steps:
        done = root.run(step, timeout=3600)
        assert done.returncode == 0, f"{' '.join(step)}:\n{done.stdout}{done.stderr}"
    yield root


def test_every_pinned_requirement_installs_at_its_pin_and_its_modules_import(
    image_venv: Chroot,
) -> None:
    done = image_venv.run([f"{IMAGE_VENV}/bin/python", "-c", IMPORT_EVERY_PIN, REQUIREMENTS])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print(json.dumps(report, indent=1))
    assert report, "docker/requirements-arm64.txt pins nothing"
    for name, entry in report.items():
        assert entry["pinned"], f"{name} is not pinned with == in docker/requirements-arm64.txt"
        assert entry["installed"] == entry["pinned"], (name, entry)
        assert entry["modules"], f"{name} installed no importable top-level module"
        assert not entry["failed"], (name, entry["failed"])


def test_the_pins_cover_every_dependency_of_the_daemon_installed_without_deps(
    image_venv: Chroot,
) -> None:
    check = image_venv.run([*PIP, "check"])
    assert check.returncode == 0, check.stdout + check.stderr
    version = image_venv.run([f"{IMAGE_VENV}/bin/personalizer", "--version"], timeout=600)
    assert version.returncode == 0, version.stdout + version.stderr
    probe = "import personalizer, tflite_runtime.interpreter, platform; print(platform.machine())"
    machine = image_venv.run([f"{IMAGE_VENV}/bin/python", "-c", probe], timeout=600)
    assert machine.returncode == 0 and machine.stdout.strip() == "aarch64", machine.stderr
