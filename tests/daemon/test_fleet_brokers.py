"""The fleet with real daemons on real mosquitto brokers: one broker with persistence (three
boards, a late joiner, a board that was away, a broker restart, bad messages), and two brokers
joined by a bridge (a board on each).

The boards run a bundle of a real ImageNet-trained MobileNetV2 (tests/support/pretrained.py), so
a handful of shots is enough to classify new shots of the same objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import photos
from tests.support.bad_fleet_messages import bad_messages, good_sample
from tests.support.broker import Broker
from tests.support.bundles import BundleSpec, build_bundle
from tests.support.daemon_harness import CLASSES, Daemon, start_daemon, stop
from tests.support.mqtt_watch import MqttWatch, b64
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PRETRAINED = BundleSpec(
    image_size=96, alpha=1.0, weights="pretrained", num_classes=8, class_names=tuple("ABCDEFGH")
)
GROUP = "personalizer-fleet/shop"
TAUGHT = ("cat", "coffee", "rocket")
SHOTS = 5
MAX_PAYLOAD = 64 * 1024


@pytest.fixture(scope="module")
def pretrained() -> Path:
    return build_bundle(PRETRAINED)


def board(
    tmp_path: Path,
    broker: Broker,
    bundle: Path,
    frames: Path,
    name: str,
    mqtt: dict[str, Any] | None = None,
    **fleet: Any,
) -> Daemon:
    """Start board ``name`` in group "shop" (without waiting for it to come online)."""
    overrides = {
        "mqtt": mqtt or {},
        "fleet": {"group": "shop", "board": name, "train_delay": 0.5,
                  "max_payload_bytes": MAX_PAYLOAD, **fleet},
        "state": {"dir": str(tmp_path / name / "state")},
        "model": {"classes": list(CLASSES)},
        # Four boards share two cores with the test: a few frames a second each is plenty.
        "camera": {"fps": 2.0},
        "inference": {"rate": 2.0},
    }  # fmt: skip
    (tmp_path / name).mkdir(exist_ok=True)
    return start_daemon(
        tmp_path / name, broker, bundle, frames, root=f"pz/{name}", overrides=overrides,
        wait_online=False,
    )  # fmt: skip


def online(*daemons: Daemon) -> None:
    for daemon in daemons:
        try:
            daemon.watch.wait_for("availability", lambda m: m.text == "online", timeout=60)
        except TimeoutError:
            raise AssertionError(
                f"{daemon.root} did not come online:\n{daemon.process.log()}"
            ) from None


def counts(daemon: Daemon, expected: dict[str, int], timeout: float = 60.0) -> dict:
    """The first status whose sample counts are ``expected``."""
    try:
        return daemon.status(timeout=timeout, predicate=lambda s: s["samples"] == expected)
    except TimeoutError:
        last = daemon.watch.received("status")[-1].json() if daemon.watch.received("status") else {}
        raise AssertionError(
            f"{daemon.root} has {last.get('samples')}, not {expected}; fleet "
            f"{last.get('fleet')}\n{daemon.process.log()[-4000:]}"
        ) from None


def teach(daemon: Daemon, name: str, shots: range) -> None:
    for i in shots:
        image = b64(photos.encode(photos.variant(name, i)))
        result = daemon.watch.command("sample", {"class": name, "image": image})
        assert result["ok"], result


def accuracy(daemon: Daemon, names: dict[str, str]) -> float:
    """Held-out shots (never taught) of each object, classified by the board."""
    right = total = 0
    for shown, expected in names.items():
        for i in range(10, 15):
            image = b64(photos.encode(photos.variant(shown, i)))
            result = daemon.watch.command("classify", {"image": image})
            right += result["class"] == expected
            total += 1
    return right / total


def retained_samples(watch: MqttWatch) -> int:
    """Sample records ``watch`` received as retained messages."""
    return sum(1 for m in watch.messages if "/s/" in m.topic and m.retain)


def trained(daemon: Daemon, since: int, timeout: float = 60.0) -> None:
    """Wait until a training cycle that started after ``since`` ended by itself."""
    daemon.watch.wait_for("loss", since=since, timeout=timeout)
    daemon.status(
        timeout=timeout,
        predicate=lambda s: s["state"] == "idle" and s["last_cycle"] is not None,
    )


def test_three_boards_on_one_broker_share_what_one_was_taught(
    tmp_path: Path, pretrained: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    broker = Broker(persistence=True).start()
    group = MqttWatch(broker.host, broker.port, GROUP).start()
    try:
        # Messages no board may take: retained on the broker before any board starts (the last
        # one of each topic stays), and all of them sent while the boards run.
        bad = bad_messages(MAX_PAYLOAD)
        for message in bad:
            group.client.publish(f"{GROUP}/{message.suffix}", message.payload, 1, retain=True)
        a, b, c = (
            board(tmp_path, broker, pretrained, photo_frames, name, **extra)
            for name, extra in (("a", {}), ("b", {}), ("c", {"mode": "follow"}))
        )
        daemons += [a, b, c]
        online(a, b, c)
        for message in bad:
            group.client.publish(f"{GROUP}/{message.suffix}", message.payload, 1, retain=False)
        marks = {d.root: d.watch.mark() for d in (b, c)}
        for name in TAUGHT:
            teach(a, name, range(SHOTS))
        expected = {name: SHOTS if name in TAUGHT else 0 for name in CLASSES}
        for follower in (b, c):
            status = counts(follower, expected)
            assert status["fleet"]["from_others"] == 3 * SHOTS
            # Counted once per topic or sample: the 3 topics, and the sample whose picture
            # cannot be used.
            assert status["fleet"]["left_out"]["refused"] == 4, status["fleet"]
            trained(follower, marks[follower.root])
            score = accuracy(follower, {name: name for name in TAUGHT})
            assert score >= 0.9, f"{follower.root} classified {score:.2f} of new shots right"
        assert not [m.topic for m in group.messages if m.topic.startswith(f"{GROUP}/c/")], (
            "a follow board publishes nothing"
        )
        assert a.process.alive() and b.process.alive() and c.process.alive()

        # A board started later with an empty state gets everything.
        d = board(tmp_path, broker, pretrained, photo_frames, "d")
        daemons.append(d)
        online(d)
        status = counts(d, expected)
        assert status["fleet"]["left_out"]["refused"] == 3, "the 3 retained bad messages"

        # b is away while a deletes a sample and renames a class; the broker restarts.
        assert b.process.terminate()[0] == 0
        listing = a.watch.command("samples", {"class": "cat"})
        assert a.watch.command("sample_delete", {"id": listing["samples"][0]["id"]})["ok"]
        assert a.watch.command("class", {"rename": "coffee", "to": "mug"})["ok"]
        now = {"cat": SHOTS - 1, "mug": SHOTS, "rocket": SHOTS, "astronaut": 0}
        for other in (c, d):
            counts(other, now)
        broker.stop()
        broker.start()
        again = board(tmp_path, broker, pretrained, photo_frames, "b")
        daemons.append(again)
        online(again)
        status = counts(again, now)
        assert status["fleet"]["samples"] == 3 * SHOTS - 1
        for other in (a, c, d):  # the others came back too, with nothing lost
            counts(other, now)
    finally:
        group.close()
        broker.close()


def test_boards_on_two_bridged_brokers_learn_from_each_other(
    tmp_path: Path, pretrained: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    first = Broker().start()
    second = Broker(bridge_to=first, bridge_topics=("personalizer-fleet/#",)).start()
    try:
        a = board(tmp_path, first, pretrained, photo_frames, "a")
        b = board(tmp_path, second, pretrained, photo_frames, "b")
        daemons += [a, b]
        online(a, b)
        teach(a, "cat", range(2))
        counts(b, {"cat": 2, "coffee": 0, "rocket": 0, "astronaut": 0})
        teach(b, "rocket", range(3))
        counts(a, {"cat": 2, "coffee": 0, "rocket": 3, "astronaut": 0})
        # The bridge carried the records as retained messages: a newcomer on either broker
        # finds all of them.
        for broker in (first, second):
            with MqttWatch(broker.host, broker.port, GROUP) as late:
                wait_until(
                    lambda late=late: retained_samples(late) == 5,
                    10,
                    f"the 5 retained sample records on the broker at port {broker.port}",
                )
    finally:
        for daemon in daemons:
            stop(daemon)
        second.close()
        first.close()


# The ACL of docs/daemon.md ("A fleet"): each board (its MQTT user name is its board name)
# writes only its own topics and reads the whole group.
ACL = (
    "user admin",
    "topic readwrite #",
    "pattern readwrite pz/%u/#",
    "pattern read personalizer-fleet/shop/#",
    "pattern write personalizer-fleet/shop/%u/#",
)


def test_with_the_documented_acl_a_board_cannot_write_as_another(
    tmp_path: Path, pretrained: Path, photo_frames: Path, daemons: list[Daemon]
) -> None:
    users = {"admin": "admin-pass", "a": "a-pass", "b": "b-pass", "rogue": "rogue-pass"}
    broker = Broker(users=users, acl=ACL).start()
    try:
        started = []
        for name in ("a", "b"):
            secret = tmp_path / f"{name}.pass"
            secret.write_text(users[name])
            started.append(
                board(tmp_path, broker, pretrained, photo_frames, name,
                      mqtt={"username": name, "password_file": str(secret)})
            )  # fmt: skip
        a, b = started
        daemons += started
        online(a, b)
        rogue = MqttWatch(broker.host, broker.port, GROUP, credentials=("rogue", "rogue-pass"))
        with rogue:
            forged = good_sample(board="a", uid="e" * 32, name="rocket")
            rogue.client.publish(
                f"{GROUP}/a/s/{'e' * 32}", forged, 1, retain=True
            ).wait_for_publish(5)
        # The broker sends b its messages in order: the forged one would come before a's.
        teach(a, "cat", range(2))
        status = counts(b, {"cat": 2, "coffee": 0, "rocket": 0, "astronaut": 0})
        assert status["fleet"]["from_others"] == 2
        with MqttWatch(broker.host, broker.port, GROUP, credentials=("admin", "admin-pass")) as w:
            wait_until(lambda: retained_samples(w) == 2, 10, "a's two records, and no forged one")
    finally:
        broker.close()
