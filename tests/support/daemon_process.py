"""The real daemon (`personalizer run`) as a subprocess, with a generated config file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    """A TOML literal for the simple values configs use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. { class = "cup", pin = 17 }
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write `{section: {key: value}}` as a TOML file."""
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class DaemonProcess:
    """`python -m personalizer run --config FILE`, its log in a file next to the config."""

    def __init__(self, config: Path, python: str = sys.executable, env: dict | None = None):
        self.config = config
        self.python = python
        self.env = {**os.environ, **(env or {})}
        self.log_path = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        """Start the daemon (returns at once)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.python, "-m", "personalizer", "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL (no clean stop)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; returns its status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def log(self) -> str:
        """Everything the daemon logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop it however needed."""
        if self.alive():
            try:
                self.terminate(10)
            except subprocess.TimeoutExpired:
                self.kill()
