"""What scripts/install.sh left in a fresh Debian arm64 root, and the runtime tests on it.

The runtime tests run inside the root with the installed venv's aarch64 interpreter and the
packages install.sh chose; only pytest is added, in a folder of its own on PYTHONPATH, so the
venv itself stays as a user's.
"""

from __future__ import annotations

import importlib.metadata
import json
import stat
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tests.arm64.conftest import VENV
from tests.arm64.plan import RUNTIME_TESTS, Suite
from tests.arm64.roots import REPO, Chroot

PYTEST_TARGET = "/opt/lane-test/pytest"
GROUPS = ("gpio", "video", "plugdev", "apex")

# Run by the installed interpreter: what it is, and which packages it has.
PROBE = """
import importlib.metadata as md, json, platform, sys
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
names = ("tflite-runtime", "ai-edge-litert", "numpy", "tflite-personalizer", "tensorflow", "av")
print(json.dumps({
    "machine": platform.machine(),
    "python": "%d.%d" % sys.version_info[:2],
    "prefix": sys.prefix,
    "versions": {name: version(name) for name in names},
}))
"""


def _members(root: Chroot, group: str) -> list[str]:
    for line in root.host_path("/etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    raise AssertionError(f"group {group!r} is missing from the root's /etc/group")


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_install_script_made_the_service_user_config_state_and_unit(
    root: Chroot, suite: Suite, install_log: str
) -> None:
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in root.host_path("/etc/passwd").read_text().splitlines()
    }
    user = passwd["personalizer"]
    assert user[5] == "/var/lib/personalizer" and user[6] == "/usr/sbin/nologin"
    for group in GROUPS:
        assert "personalizer" in _members(root, group), group
    uid, gid = root.ids("personalizer")

    etc = root.host_path("/etc/personalizer")
    assert _mode(etc) == "0o750" and etc.stat().st_gid == gid
    config = etc / "personalizer.toml"
    assert _mode(config) == "0o640" and config.stat().st_gid == gid
    password = etc / "mqtt_password"
    assert _mode(password) == "0o600" and password.stat().st_uid == 0
    state = root.host_path("/var/lib/personalizer")
    assert _mode(state) == "0o700" and state.stat().st_uid == uid

    unit = root.host_path("/etc/systemd/system/personalizer.service")
    assert unit.read_text() == (REPO / "systemd/personalizer.service").read_text()
    assert root.host_path("/etc/udev/rules.d/71-personalizer-edgetpu.rules").is_file()
    chosen = "tflite" if suite.runtime_dist == "tflite-runtime" else "litert"
    assert f"interpreter: {chosen}" in install_log
    assert "systemctl enable --now personalizer" in install_log


def test_installed_venv_is_aarch64_with_the_suites_python_and_interpreter(
    root: Chroot, suite: Suite
) -> None:
    done = root.run([f"{VENV}/bin/python", "-c", PROBE], timeout=300)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    print(f"{suite.name}: {probe}")
    assert probe["machine"] == "aarch64"
    assert probe["python"] == suite.python
    assert probe["prefix"] == VENV
    versions = probe["versions"]
    assert versions[suite.runtime_dist] is not None, versions
    assert versions[suite.runtime_dist].startswith(suite.runtime_version_prefix), versions
    assert versions[suite.absent_dist] is None, versions
    assert versions["tensorflow"] is None
    assert versions["tflite-personalizer"] is not None
    assert versions["av"] is not None, "install.sh --stream did not install PyAV"
    numpy_major = int(versions["numpy"].split(".")[0])
    assert (numpy_major < 2) if suite.numpy_below_2 else (numpy_major >= 1)


# Run by the installed interpreter: PyAV (install.sh --stream, the network cameras' decoder)
# decodes a JPEG written by Pillow, as it decodes an MJPEG stream's frames.
DECODE = """
import io, sys, av, numpy, PIL.Image
path = "/tmp/lane-frame.jpg"
PIL.Image.new("RGB", (64, 48), (200, 30, 90)).save(path, quality=95)
with av.open(path) as container:
    frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
assert frame.shape == (48, 64, 3), frame.shape
assert abs(int(frame[..., 0].mean()) - 200) < 8, frame[..., 0].mean()
print(av.__version__)
"""


def test_the_network_cameras_decoder_runs_on_aarch64(root: Chroot, suite: Suite) -> None:
    done = root.run([f"{VENV}/bin/python", "-c", DECODE], timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"{suite.name}: PyAV {done.stdout.strip()} decodes on aarch64")


def test_runtime_tests_pass_on_the_installed_aarch64_venv(
    root: Chroot, suite: Suite, logs: Path
) -> None:
    pytest_version = importlib.metadata.version("pytest")  # the host's, for the same behaviour
    added = root.run(
        [f"{VENV}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", PYTEST_TARGET, f"pytest=={pytest_version}"],
        timeout=900,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    junit = "/tmp/runtime-tests.xml"
    log = logs / f"{suite.name}-runtime-tests.log"
    done = root.run(
        [f"{VENV}/bin/python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs",
         "--durations=10", f"--junitxml={junit}", *RUNTIME_TESTS],
        cwd="/src",
        env={"PYTHONPATH": PYTEST_TARGET},
        timeout=3600,
        log=log,
    )  # fmt: skip
    output = done.stdout
    assert done.returncode == 0, f"runtime tests failed in the {suite.name} root:\n{output[-6000:]}"
    suite_xml = ElementTree.parse(root.host_path(junit)).getroot()
    counts = suite_xml if suite_xml.tag == "testsuite" else suite_xml.find("testsuite")
    assert counts is not None
    ran, skipped = int(counts.get("tests", 0)), int(counts.get("skipped", 0))
    # Every selected test ran on this root (a node id that matches nothing fails pytest itself).
    assert skipped == 0, output[-3000:]
    assert ran >= len(RUNTIME_TESTS), (ran, output[-3000:])
    print(f"{suite.name}: {ran} runtime tests passed on the installed venv")
