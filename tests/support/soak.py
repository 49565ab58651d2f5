"""Soak: the real daemon for a while on a replayed camera, a sample every few seconds, training
switched on and off, a subscriber and periodic broker restarts; prints its figures.

    make soak                       # SOAK_SECONDS=600 by default
    .venvs/board/bin/python -m tests.support.soak --seconds 60

Targets (exit status 1 when one is missed): RSS and open file descriptors flat (under 5% growth
after the warm-up), no crash, no acknowledged sample lost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.support.broker import Broker
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.daemon_harness import CLASSES, base_sections
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.mqtt_watch import MqttWatch
from tests.support.photos import replay_folder
from tests.support.state_db import saved_counts

ROOT = "pz/soak"
GROWTH_LIMIT = 0.05


@dataclass
class SoakReport:
    """What a soak run measured."""

    seconds: float
    frames: int = 0  # frame number of the newest prediction: frames the daemon captured
    predictions: int = 0  # predictions the subscriber received
    reconnects: int = 0  # the daemon's MQTT reconnects
    broker_restarts: int = 0
    samples_acknowledged: int = 0
    samples_lost: int = 0
    crashes: int = 0
    exit_status: int | None = None
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    fds: list[tuple[float, int]] = field(default_factory=list)
    warmup: float = 0.0

    def _after_warmup(self, series: list[tuple[float, int]]) -> tuple[int, int]:
        values = [v for t, v in series if t >= self.warmup] or [v for _, v in series]
        # The first and last few readings, medians: one reading during a save is no trend.
        head, tail = values[:5], values[-5:]
        return int(np.median(head)), int(np.median(tail))

    @property
    def rss_growth(self) -> float:
        """Relative RSS growth from the end of the warm-up to the end."""
        start, end = self._after_warmup(self.rss)
        return (end - start) / start

    @property
    def fd_growth(self) -> float:
        """Relative growth of the open file descriptors from the end of the warm-up to the end."""
        start, end = self._after_warmup(self.fds)
        return (end - start) / start

    def problems(self) -> list[str]:
        """The targets this run missed."""
        found = []
        if self.rss_growth >= GROWTH_LIMIT:
            found.append(f"RSS grew {self.rss_growth:.1%} after the warm-up")
        if self.fd_growth >= GROWTH_LIMIT:
            found.append(f"open fds grew {self.fd_growth:.1%} after the warm-up")
        if self.crashes:
            found.append(f"{self.crashes} crash(es)")
        if self.samples_lost:
            found.append(f"{self.samples_lost} acknowledged sample(s) lost")
        if self.exit_status != 0:
            found.append(f"the daemon exited with {self.exit_status} on SIGTERM")
        if not self.predictions:
            found.append("no predictions were received")
        return found

    def summary(self) -> str:
        """The figures, one per line."""
        rss0, rss1 = self._after_warmup(self.rss)
        fd0, fd1 = self._after_warmup(self.fds)
        return "\n".join(
            [
                f"soak: {self.seconds:.0f} s (warm-up {self.warmup:.0f} s)",
                f"  frames processed     {self.frames}",
                f"  predictions received {self.predictions}",
                f"  broker restarts      {self.broker_restarts}, daemon reconnects "
                f"{self.reconnects}",
                f"  samples acknowledged {self.samples_acknowledged}, lost {self.samples_lost}",
                f"  crashes              {self.crashes}, exit status on SIGTERM {self.exit_status}",
                f"  RSS                  start {self.rss[0][1] / 1e6:.1f} MB, after warm-up "
                f"{rss0 / 1e6:.1f} MB, end {rss1 / 1e6:.1f} MB ({self.rss_growth:+.1%})",
                f"  open fds             start {self.fds[0][1]}, after warm-up {fd0}, end {fd1} "
                f"({self.fd_growth:+.1%})",
            ]
        )


def _proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _proc_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def run_soak(
    seconds: float,
    sample_every: float = 3.0,
    train_toggle_every: float = 10.0,
    broker_restart_every: float = 20.0,
) -> SoakReport:
    """Run the soak for `seconds` and return its figures."""
    report = SoakReport(seconds=seconds, warmup=max(15.0, 0.25 * seconds))
    work = Path(tempfile.mkdtemp(prefix="personalizer-soak-"))
    broker = Broker().start()
    daemon: DaemonProcess | None = None
    watch: MqttWatch | None = None
    try:
        frames = replay_folder(work / "frames", list(CLASSES), copies=3)
        sections = base_sections(work, broker, build_bundle(BundleSpec()), frames, ROOT)
        sections["inference"].update(rate=5.0)
        sections["training"].update(min_epoch_interval=0.5, autosave_interval=5.0)
        config = write_config(work / "soak.toml", sections)
        state_file = Path(sections["state"]["dir"]) / "state.db"
        watch = MqttWatch(broker.host, broker.port, ROOT).start()
        daemon = DaemonProcess(config).start()
        watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
        acked = dict.fromkeys(CLASSES, 0)
        started = time.monotonic()
        next_sample = next_toggle = started + 1.0
        next_restart = started + broker_restart_every
        training = False
        taken = 0
        while (now := time.monotonic()) - started < seconds:
            if not daemon.alive():
                report.crashes += 1
                print(f"soak: the daemon died:\n{daemon.log()[-3000:]}", file=sys.stderr)
                daemon = DaemonProcess(config).start()
            elapsed = now - started
            report.rss.append((elapsed, _proc_rss(daemon.pid)))
            report.fds.append((elapsed, _proc_fds(daemon.pid)))
            if now >= next_restart:
                broker.stop()
                time.sleep(1.0)
                broker.start()
                report.broker_restarts += 1
                next_restart = now + broker_restart_every
            if now >= next_sample:
                name = CLASSES[taken % len(CLASSES)]
                taken += 1
                try:
                    result = watch.command("sample", {"class": name}, timeout=5)
                except TimeoutError:  # the broker was away: not acknowledged, nothing to keep
                    result = {"ok": False}
                if result.get("ok"):
                    acked[name] = max(acked[name], result["count"])
                next_sample = now + sample_every
            if now >= next_toggle and any(acked.values()):
                training = not training
                action = "start" if training else "stop"
                try:
                    watch.command("train", {"action": action}, timeout=5)
                except TimeoutError:
                    training = not training
                next_toggle = now + train_toggle_every
            time.sleep(0.5)
        predictions = watch.received("prediction")
        report.predictions = len(predictions)
        report.frames = max((m.json()["frame"] for m in predictions), default=0)
        report.exit_status, _ = daemon.terminate(15)
        log = daemon.log()
        report.reconnects = max(0, log.count("MQTT: connected to") - 1)
        on_disk = saved_counts(state_file)
        report.samples_acknowledged = sum(acked.values())
        report.samples_lost = sum(max(0, acked[name] - on_disk.get(name, 0)) for name in CLASSES)
        return report
    finally:
        if daemon is not None:
            daemon.close()
        if watch is not None:
            watch.close()
        broker.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`make soak`: run, print the figures, exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    report = run_soak(args.seconds)
    print(report.summary())
    if args.json:
        fields = {k: v for k, v in vars(report).items() if k not in ("rss", "fds")}
        print(
            json.dumps({**fields, "rss_growth": report.rss_growth, "fd_growth": report.fd_growth})
        )
    problems = report.problems()
    for problem in problems:
        print(f"soak: target missed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
