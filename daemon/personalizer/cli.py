"""`personalizer`: the command line of the daemon.

    personalizer run --config /etc/personalizer/personalizer.toml
    personalizer check-config --config /etc/personalizer/personalizer.toml
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

EPILOG = """\
MQTT commands (publish JSON to <topic_prefix>/cmd/<name>):
  sample    {"class": "cup"}              take the current frame as a sample of "cup"
  train     {"action": "start"|"stop"}    start or pause training
  classify  {"image": "<base64 JPEG>"}    classify one image
  reset     {"class": "cup"} | {"all": true}
  save      {}                            write the state to disk now
Results arrive on <topic_prefix>/cmd/<name>/result. Full reference: docs/daemon.md.

exit status: 0 ok, 78 unusable configuration/credential/bundle/state folder, 1 other failure
"""


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
    for sub in (run, check, health):
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

    from .health import HeartbeatFile, NotifierFanout
    from .service import SetupError, build_service
    from .systemd_notify import SystemdNotifier

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
    parser.print_help()
    return EX_FAILURE


if __name__ == "__main__":
    sys.exit(main())
