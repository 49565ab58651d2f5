"""`personalizer`: the command line of the daemon.

    personalizer run --config /etc/personalizer/personalizer.toml
    personalizer check-config --config /etc/personalizer/personalizer.toml
    personalizer export --out board.db    /    personalizer import board.db --merge
    personalizer --version

Exit status: 0 on success (and after a clean stop on SIGTERM/SIGINT), 78 (EX_CONFIG) when the
configuration, a credential, the bundle or the state folder cannot be used, 1 on any other
failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .commands.reference import commands_help

if TYPE_CHECKING:
    from .config import Config

EX_OK = 0
EX_FAILURE = 1
EX_CONFIG = 78

DEFAULT_CONFIG = "/etc/personalizer/personalizer.toml"

DESCRIPTION = """\
On-device personalization of an image classifier: reads a camera, lets MQTT commands (and
buttons) label frames as samples of your classes, trains the model's head on this board, and
publishes predictions, loss and status to an MQTT broker.

Start here:
  1. convert a bundle on a workstation:  tflite-transfer-convert --base_mobilenetv2 ...
  2. write a config (see config/personalizer.toml, every key is explained there)
  3. personalizer check-config --config my.toml
  4. personalizer run --config my.toml   (--simulate: keyboard keys stand in for GPIO buttons)
  5. watch it:  mosquitto_sub -v -t 'personalizer/#'
"""

EPILOG = (
    commands_help()
    + """

exit status: 0 ok, 78 unusable configuration/credential/bundle/state folder, 1 other failure
"""
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="personalizer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"personalizer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the daemon in the foreground (logs to stderr; SIGTERM/Ctrl-C stops it)",
        description="Run the daemon in the foreground until SIGTERM or SIGINT.",
    )
    check = commands.add_parser(
        "check-config",
        help="validate a config file and print a one-line summary (exit 78 on errors)",
        description="Validate a config file: exit 0 with a summary, or 78 listing every error.",
    )
    health = commands.add_parser(
        "health",
        help="exit 0 while a running daemon's frame loop makes progress, else 1 (HEALTHCHECK)",
        description="Report whether the daemon using this config is alive and serving.",
    )
    export = commands.add_parser(
        "export",
        help="copy this board's samples, classes and head into one file (also while running)",
        description="Write a consistent copy of the state (SQLite's backup API) to --out.",
    )
    export.add_argument("--out", "-o", required=True, help="the file to write")
    take = commands.add_parser(
        "import",
        help="take a file made by export into this board's state (--replace or --merge)",
        description=(
            "Take a file made by `personalizer export` into this board's state, running daemon "
            "or not, in one transaction. --replace: the file's classes, samples and head "
            "replace the board's; --merge: its samples are added (same bundle only)."
        ),
    )
    take.add_argument("file", help="the file made by personalizer export")
    how = take.add_mutually_exclusive_group(required=True)
    how.add_argument("--replace", action="store_true", help="replace everything with the file's")
    how.add_argument("--merge", action="store_true", help="add the file's samples to the board's")
    for sub in (run, check, health, export, take):
        sub.add_argument(
            "--config",
            "-c",
            default=os.environ.get("PERSONALIZER_CONFIG", DEFAULT_CONFIG),
            help="the TOML config file (default: $PERSONALIZER_CONFIG or %(default)s)",
        )
    run.add_argument(
        "--simulate",
        action="store_true",
        help="keyboard keys stand in for the GPIO buttons (mock pins; LEDs printed)",
    )
    run.add_argument(
        "--log-level",
        default=os.environ.get("PERSONALIZER_LOG_LEVEL", "info"),
        choices=("debug", "info", "warning", "error"),
        help="how much to log (default: info)",
    )
    return parser


def _setup_logging(level: str) -> None:
    # journald adds its own timestamps; a terminal gets them from us.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if sys.stderr.isatty():
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)


def _load_config(path: str) -> Config | None:
    """The validated config, or None after printing every problem (the caller exits 78)."""
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _check_config(path: str) -> int:
    config = _load_config(path)
    if config is None:
        return EX_CONFIG
    print(config.summary())
    from .store.loading import board_classes, config_drift
    from .store.state import STATE_DB

    kept = board_classes(config.state.dir / STATE_DB)
    if kept is not None and config.model.classes:
        print(f"the board's classes (they win over the config): {', '.join(kept.values())}")
        for note in config_drift(config.model.classes, list(kept.values())):
            print(f"note: {note}")
    return EX_OK


def _health(path: str) -> int:
    from .health import check_health

    config = _load_config(path)
    if config is None:
        return EX_CONFIG
    healthy, reason = check_health(config.state.dir)
    print(reason, file=sys.stdout if healthy else sys.stderr)
    return EX_OK if healthy else EX_FAILURE


def _run(path: str, log_level: str, simulate: bool = False) -> int:
    _setup_logging(log_level)
    log = logging.getLogger("personalizer")
    config = _load_config(path)
    if config is None:
        return EX_CONFIG
    os.umask(0o077)  # state files and folders are private

    from .allocator import tune_allocator
    from .health import HeartbeatFile, NotifierFanout
    from .service import SetupError, build_service
    from .systemd_notify import SystemdNotifier

    log.debug("allocator: %s", ", ".join(tune_allocator()) or "left as it is")
    systemd = SystemdNotifier.from_environment()  # None unless systemd supervises us
    notifier = NotifierFanout(
        [HeartbeatFile(config.state.dir)] + ([systemd] if systemd is not None else [])
    )
    try:
        service = build_service(config, notifier=notifier, simulate=simulate)
    except SetupError as exc:
        log.error("%s", exc)
        return EX_CONFIG
    try:
        return service.run()
    except Exception:
        log.exception("the daemon failed")
        return EX_FAILURE


def _export(path: str, out: str) -> int:
    from pathlib import Path

    from .store import STATE_DB
    from .store.exchange import ExchangeError, export_state

    config = _load_config(path)
    if config is None:
        return EX_CONFIG
    try:
        summary = export_state(config.state.dir / STATE_DB, Path(out))
    except ExchangeError as exc:
        print(f"personalizer export: {exc}", file=sys.stderr)
        return EX_FAILURE
    print(f"exported {summary.describe()} to {out}")
    return EX_OK


def _import(path: str, file: str, mode: str) -> int:
    from pathlib import Path

    from .errors import BundleError
    from .model.bundle import read_manifest
    from .store import STATE_DB
    from .store.exchange import ExchangeError, import_state

    config = _load_config(path)
    if config is None:
        return EX_CONFIG
    try:
        manifest = read_manifest(config.model.bundle)
    except BundleError as exc:
        print(f"personalizer import: model.bundle cannot be used: {exc}", file=sys.stderr)
        return EX_CONFIG
    os.umask(0o077)
    config.state.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        incoming, result = import_state(
            Path(file),
            config.state.dir / STATE_DB,
            mode,  # type: ignore[arg-type]
            manifest.bundle_id,
            manifest.num_classes,
        )
    except ExchangeError as exc:
        print(f"personalizer import: {exc}; nothing was changed", file=sys.stderr)
        return EX_FAILURE
    print(f"imported ({mode}) {incoming.describe()}")
    print(f"the board now has {result.describe()}")
    print("a running daemon loads it within a second; otherwise at its next start")
    return EX_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `personalizer` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "health":
        return _health(args.config)
    if args.command == "run":
        return _run(args.config, args.log_level, args.simulate)
    if args.command == "export":
        return _export(args.config, args.out)
    if args.command == "import":
        return _import(args.config, args.file, "replace" if args.replace else "merge")
    parser.print_help()
    return EX_FAILURE


if __name__ == "__main__":
    sys.exit(main())
