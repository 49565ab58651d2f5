"""What a maker installs on the board: the systemd unit, the Docker image, the install script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.board.conftest import unit_settings

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "personalizer.service"
DOCKERFILE = REPO / "Dockerfile.arm64"
BIN = Path(sys.executable).parent


def test_unit_security_score_is_at_most_2(analyze):
    done = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for personalizer.service: ([0-9.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security: {score}")
    assert score <= 2.0


def test_unit_verifies(analyze, tmp_path):
    # verify also checks that ExecStart exists: point it at this machine's personalizer.
    text = UNIT.read_text().replace(
        "/opt/personalizer/venv/bin/personalizer", str(BIN / "personalizer")
    )
    unit = tmp_path / "personalizer.service"
    unit.write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_unit_supervises_and_reaches_the_hardware():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["78"]
    assert s["StateDirectory"] == ["personalizer"] and s["StateDirectoryMode"] == ["0700"]
    assert s["ConfigurationDirectory"] == ["personalizer"]
    assert s["WorkingDirectory"] == ["%S/personalizer"]  # lgpio's pipe needs a writable cwd
    assert s["LoadCredential"] == [
        "mqtt_password:/etc/personalizer/mqtt_password",
        "web_password:/etc/personalizer/web_password",
        "camera_password:/etc/personalizer/camera_password",
    ]
    assert {"gpio", "video"} <= set(s["SupplementaryGroups"][0].split())
    allowed = {line.split()[0] for line in s["DeviceAllow"]}
    assert {
        "char-gpiochip",
        "char-video4linux",
        "char-media",
        "char-apex",
        "char-usb_device",
    } <= allowed
    assert s["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in s and "PrivateNetwork" not in s and "IPAddressDeny" not in s
    assert {"AF_INET", "AF_INET6"} <= set(s["RestrictAddressFamilies"][0].split())
    assert "--config" in s["ExecStart"][0]


def test_dockerfile_passes_hadolint():
    done = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_dockerfile_runs_unprivileged_with_volumes_and_a_healthcheck():
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim-bookworm" in text
    assert re.search(r"^USER 990:990$", text, re.M)
    assert 'VOLUME ["/etc/personalizer", "/var/lib/personalizer"]' in text
    assert "HEALTHCHECK" in text and 'personalizer", "health"' in text


def test_image_requirements_resolve_for_linux_aarch64_cp311(tmp_path):
    platforms = ["manylinux2014_aarch64", "linux_aarch64"] + [
        f"manylinux_2_{v}_aarch64"
        for v in (17, 28, 31, 34, 35, 36)  # bookworm: glibc 2.36
    ]
    done = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            *[f"--platform={p}" for p in platforms],
            "--dest",
            str(tmp_path),
            "--requirement",
            str(REPO / "docker" / "requirements-arm64.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert any(w.startswith("tflite_runtime-2.14.0-cp311") and "aarch64" in w for w in wheels)
    assert any(w.startswith("opencv_python_headless") and "aarch64" in w for w in wheels)
    assert not [w for w in wheels if "x86_64" in w]


def _image_pins() -> dict[str, str]:
    """docker/requirements-arm64.txt as {normalised name: pinned version ('' if not ==)}."""
    pins = {}
    for line in (REPO / "docker" / "requirements-arm64.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return pins


def test_image_pins_every_dependency_of_the_daemon():
    # The image installs the daemon with --no-deps: a dependency without a pin is missing there.
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "daemon" / "pyproject.toml").read_text())["project"]
    pins = _image_pins()
    assert all(pins.values()), f"every line must be name==version: {pins}"
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"pin {requirement.name} in docker/requirements-arm64.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"docker/requirements-arm64.txt pins {name}=={pins[name]}, outside {dependency!r}"
        )


def test_install_script_is_idempotent_and_uninstalls(tmp_path):
    root = tmp_path / "root"
    script = REPO / "scripts" / "install.sh"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), "--root", str(root), *args],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            check=False,
        )

    first = run("--runtime", "tflite")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "systemctl enable --now personalizer" in first.stdout
    venv_python = root / "opt/personalizer/venv/bin/python"
    check = subprocess.run(
        [str(venv_python), "-c", "import tflite_runtime, personalizer"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    config = root / "etc/personalizer/personalizer.toml"
    assert config.read_text() == (REPO / "config/personalizer.toml").read_text()
    assert (root / "etc/systemd/system/personalizer.service").read_text() == UNIT.read_text()
    assert oct((root / "var/lib/personalizer").stat().st_mode & 0o777) == "0o700"
    assert oct((root / "etc/personalizer/mqtt_password").stat().st_mode & 0o777) == "0o600"
    web_password = root / "etc/personalizer/web_password"
    assert web_password.read_bytes() == b"" and oct(web_password.stat().st_mode & 0o777) == "0o600"
    camera_password = root / "etc/personalizer/camera_password"
    assert camera_password.read_bytes() == b""
    assert oct(camera_password.stat().st_mode & 0o777) == "0o600"
    config.write_text(config.read_text() + "\n# edited by the user\n")

    second = run("--runtime", "tflite")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "kept your" in second.stdout
    assert config.read_text().endswith("# edited by the user\n")

    removed = run("--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "opt/personalizer").exists()
    assert not (root / "etc/systemd/system/personalizer.service").exists()
    assert config.exists() and (root / "var/lib/personalizer").exists()
    purged = run("--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/personalizer").exists() and not (root / "var/lib/personalizer").exists()


def test_install_script_rejects_unknown_options(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "scripts/install.sh"), "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "unknown option: --bogus" in done.stderr
