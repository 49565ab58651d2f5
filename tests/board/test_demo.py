"""`make demo`, as a maker runs it the first time and the second: the scripted user's samples,
training and classification, every MQTT message shown (also the binary pictures), a clean stop,
what was taught kept for the next run; and a daemon that dies makes the demo fail."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"


def run_demo(work: Path, *args: str, seconds: float = 4, timeout: float = 900) -> tuple[int, str]:
    env = {**os.environ, "DEMO_DIR": str(work), "DEMO_SECONDS": str(seconds), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.timeout(1500)
def test_the_demo_teaches_shows_every_message_and_keeps_what_was_taught(tmp_path):
    code, out = run_demo(tmp_path / "demo", "--fresh")
    assert code == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    right = re.search(r"(\d) of 4 right", out)
    assert right and int(right.group(1)) >= 3, out[-3000:]
    assert re.search(r"picture/sample\s+a JPEG of what the model saw", out), out[-3000:]
    assert re.search(r"the web page: http://127\.0\.0\.1:\d+/  password: \S+", out)
    assert "the daemon stopped (exit 0)" in out and "done." in out

    code, again = run_demo(tmp_path / "demo")  # the second run: nothing is taught again
    assert code == 0, again[-3000:]
    assert "the board remembers 24 samples from your last run" in again, again[-3000:]
    assert "taking 6 samples" not in again


def _daemon_of(work: Path) -> int:
    """The pid of the demo's daemon (`personalizer run --config <work>/personalizer.toml`)."""
    config = str(work / "personalizer.toml")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"run" in argv and config.encode() in argv:
                return int(entry.name)
    raise AssertionError("the demo's daemon is not running")


def test_a_daemon_that_dies_fails_the_demo_with_its_last_log_lines(tmp_path):
    work = tmp_path / "demo"
    env = {**os.environ, "DEMO_DIR": str(work), "DEMO_SECONDS": "300", "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    demo = subprocess.Popen(
        [sys.executable, str(DEMO), "--fresh"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if "watching the camera's predictions" in line:
                os.kill(_daemon_of(work), signal.SIGKILL)
                break
        out = "".join(lines) + demo.stdout.read()
        code = demo.wait(timeout=60)
    finally:
        demo.kill()
    assert code == 1, out[-3000:]
    assert "the daemon exited (status -9)" in out, out[-3000:]
    assert "done." not in out
