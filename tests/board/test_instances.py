"""Several cameras on one board: the template unit personalizer@.service and install.sh
--instance NAME, down to two daemons running side by side from the configs it wrote."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import tomllib

from tests.board.conftest import unit_settings
from tests.support.daemon_harness import CLASSES
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "systemd" / "personalizer@.service"
SCRIPT = REPO / "scripts" / "install.sh"
HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())


def test_the_template_unit_scores_at_most_2_and_verifies(analyze, tmp_path):
    # An instance of the template, as systemd would load it, with ExecStart on this machine.
    unit = tmp_path / "personalizer@garage.service"
    unit.write_text(
        TEMPLATE.read_text().replace(
            "/opt/personalizer/venv/bin/personalizer",
            str(Path(sys.executable).parent / "personalizer"),
        )
    )
    done = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(
        r"Overall exposure level for personalizer@garage.service: ([0-9.]+)", done.stdout
    )
    assert match, done.stdout + done.stderr
    print(f"systemd-analyze security (template): {match.group(1)}")
    assert float(match.group(1)) <= 2.0
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr


def test_an_instance_has_its_own_config_state_and_name():
    s = unit_settings(TEMPLATE.read_text())
    assert s["ExecStart"][0].endswith("--config ${CONFIGURATION_DIRECTORY}/%i.toml")
    assert s["Environment"] == ["PERSONALIZER_INSTANCE=%i"]
    assert s["StateDirectory"] == ["personalizer/%i"]
    assert s["WorkingDirectory"] == ["%S/personalizer/%i"]
    plain = unit_settings((REPO / "systemd" / "personalizer.service").read_text())
    same = {"Environment", "ExecStart", "StateDirectory", "WorkingDirectory", "Description"}
    assert {k: v for k, v in s.items() if k not in same | {"LoadCredential"}} == {
        k: v for k, v in plain.items() if k not in same | {"LoadCredential"}
    }, "the template differs from the plain unit beyond the instance's own files"


def _install(root: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--runtime", "tflite", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _run_instance(
    root: Path, name: str, bundle: Path, frames: Path, broker, tmp_path: Path
) -> tuple[DaemonProcess, dict]:
    """Start the instance's daemon from the config install.sh wrote, as its unit would (the
    installed venv, PERSONALIZER_INSTANCE), pointed at this test's bundle, camera and broker."""
    document = tomllib.loads((root / f"etc/personalizer/{name}.toml").read_text())
    document["model"].update(bundle=str(bundle), classes=list(CLASSES), num_threads=1)
    document["camera"].update(source="replay", path=str(frames))
    document["mqtt"].update(host=broker.host, port=broker.port, homeassistant_discovery=True)
    document["state"]["dir"] = str(root) + document["state"]["dir"]
    document["web"].update(
        enabled=True, listen=document["web"]["listen"].replace("0.0.0.0", "127.0.0.1")
    )
    config = write_config(tmp_path / f"{name}.toml", document)
    python = str(root / "opt/personalizer/venv/bin/python")
    daemon = DaemonProcess(config, python=python, env={"PERSONALIZER_INSTANCE": name}).start()
    return daemon, document


def _page_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            return page.status == 200
    except OSError:
        return False


def test_two_instances_run_side_by_side(tmp_path, broker, bundle, photo_frames):
    root = tmp_path / "root"
    _install(root)
    first = _install(root, "--instance", "garage")
    assert "systemctl enable --now personalizer@garage" in first.stdout
    _install(root, "--instance", "drive")
    etc = root / "etc/personalizer"
    assert (root / "etc/systemd/system/personalizer@.service").read_text() == TEMPLATE.read_text()
    configs = {n: tomllib.loads((etc / f"{n}.toml").read_text()) for n in ("garage", "drive")}
    assert configs["garage"]["state"]["dir"] == "/var/lib/personalizer/garage"
    assert configs["drive"]["state"]["dir"] == "/var/lib/personalizer/drive"
    assert {c["web"]["listen"] for c in configs.values()} == {"0.0.0.0:8081", "0.0.0.0:8082"}
    assert all(c["mqtt"]["topic_prefix"] == "" for c in configs.values())
    assert oct((root / "var/lib/personalizer/garage").stat().st_mode & 0o777) == "0o700"

    running = []
    try:
        with MqttWatch(broker.host, broker.port, "personalizer", ("homeassistant/#",)) as watch:
            for name in configs:
                running.append(_run_instance(root, name, bundle, photo_frames, broker, tmp_path))
            for name in configs:  # each under its own root topic personalizer/<host>/<name>
                status = watch.wait_for(f"{HOST}/{name}/status", timeout=60).json()
                assert status["classes"] == list(CLASSES)
            for daemon, document in running:
                port = int(document["web"]["listen"].rsplit(":", 1)[1])
                # The status comes before the page's server is up: wait for the page.
                wait_until(lambda p=port: _page_answers(p), 30, f"the page on port {port}")
                assert (Path(document["state"]["dir"]) / "state.db").is_file()
                assert daemon.alive(), daemon.log()
            nodes = {f"personalizer_{HOST}_{name}" for name in configs}

            def announced() -> set[str]:
                return {
                    m.topic.split("/")[2]
                    for m in list(watch.messages)
                    if m.topic.startswith("homeassistant/") and m.topic.endswith("/config")
                }

            wait_until(lambda: announced() >= nodes, 30, "discovery of both instances")
            assert announced() == nodes  # two Home Assistant devices, nothing else
    finally:
        for daemon, _ in running:
            daemon.close()
    removed = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--uninstall", "--purge", "--instance", "drive"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    assert not (etc / "drive.toml").exists() and (etc / "garage.toml").exists()
