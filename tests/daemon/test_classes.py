"""Classes that grow on the board, and an "unknown" that is published like a class."""

from __future__ import annotations

from tests.support.photos import photo_b64


def test_classes_are_added_renamed_and_removed_over_mqtt_and_kept(run_daemon, tmp_path):
    daemon = run_daemon(overrides={"model": {"classes": ["cat", "coffee"]}})
    watch = daemon.watch
    status = daemon.status()
    assert status["classes"] == ["cat", "coffee"] and status["capacity"] == 4
    assert watch.command("sample", {"class": "cat", "image": photo_b64("cat")})["ok"]

    added = watch.command("class", {"add": "rocket"})
    assert (
        added["ok"] and added["classes"] == ["cat", "coffee", "rocket"] and added["capacity"] == 4
    )
    assert watch.command("sample", {"class": "rocket", "image": photo_b64("rocket")})["count"] == 1
    renamed = watch.command("class", {"rename": "cat", "to": "kitten"})
    assert renamed["classes"] == ["kitten", "coffee", "rocket"]
    assert watch.command("sample", {"class": "kitten"})["count"] == 2  # its samples stayed
    removed = watch.command("class", {"remove": "coffee"})
    assert removed["ok"] and removed["classes"] == ["kitten", "rocket"]
    assert watch.command("class", {"add": "astronaut"})["classes"] == [
        "kitten", "astronaut", "rocket"  # the freed slot is taken again
    ]  # fmt: skip
    assert watch.command("class", {"add": "lamp"})["ok"]

    for payload, reason in (
        ({"add": "mug"}, "this model has room for 4 classes and all are in use"),
        ({"add": "rocket"}, 'class "rocket" exists already'),
        ({"rename": "dog", "to": "wolf"}, 'unknown class "dog"'),
        ({"rename": "rocket", "to": "lamp"}, 'class "lamp" exists already'),
        ({"remove": "coffee"}, 'unknown class "coffee"'),
        ({"add": "x", "remove": "lamp"}, "class needs exactly one of"),
        ({"rename": "rocket"}, "class needs exactly one of"),
    ):
        result = watch.command("class", payload)
        assert result["ok"] is False and reason in result["error"], (payload, result)
    status = daemon.status(predicate=lambda s: len(s["classes"]) == 4)
    assert status["samples"] == {"kitten": 2, "astronaut": 0, "rocket": 1, "lamp": 0}

    assert daemon.process.terminate()[0] == 0
    overrides = {"state": {"dir": str(daemon.state_dir)}, "model": {"classes": ["cat", "coffee"]}}
    again = run_daemon(root="pz/again", overrides=overrides)
    status = again.status()
    assert status["classes"] == ["kitten", "astronaut", "rocket", "lamp"]
    assert status["samples"] == {"kitten": 2, "astronaut": 0, "rocket": 1, "lamp": 0}


def test_unknown_is_published_and_the_object_can_leave(run_daemon):
    daemon = run_daemon()
    watch = daemon.watch
    # No samples at all: everything is unknown, and that is said.
    first = watch.wait_for("prediction", timeout=30).json()
    assert first["class"] == "unknown" and first["known"] is False and first["confidence"] == 0.0
    for name in ("cat", "coffee", "rocket", "astronaut"):
        assert watch.command("sample", {"class": name, "image": photo_b64(name)})["ok"]
    taught = watch.wait_for("prediction", lambda m: m.json()["known"], timeout=30).json()
    assert taught["class"] in ("cat", "coffee", "rocket", "astronaut")
    classified = watch.command("classify", {"image": photo_b64("cat")})
    assert classified["ok"] and classified["known"] is True and classified["class"] == "cat"
    mark = watch.mark()
    assert watch.command("reset", {"all": True})["ok"]
    # A frame classified just before the reset may still be on its way: the next ones say it.
    gone = watch.wait_for(
        "prediction", lambda m: not m.json()["known"], since=mark, timeout=30
    ).json()
    assert gone["class"] == "unknown" and gone["confidence"] == 0.0


def test_metrics_are_published_retained_after_training_and_on_request(run_daemon, broker):
    from tests.support.mqtt_watch import MqttWatch

    daemon = run_daemon(overrides={"training": {"epochs_per_cycle": 3}})
    watch = daemon.watch
    for name in ("cat", "coffee"):
        for index in range(4):
            image = photo_b64(name, index)
            assert watch.command("sample", {"class": name, "image": image})["ok"]
    mark = watch.mark()
    assert watch.command("train", {"action": "start"})["ok"]
    metrics = watch.wait_for("metrics", since=mark, timeout=60).json()
    assert metrics["samples"] == 8 and 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["recall"]) == {"cat", "coffee"}  # the classes with samples
    assert "fold" in metrics["method"] and metrics["seconds"] >= 0
    asked = watch.command("evaluate", {})
    assert asked["ok"] and asked["samples"] == 8 and set(asked["confusion"]) == {"cat", "coffee"}
    with MqttWatch(broker.host, broker.port, daemon.root) as late:
        assert late.wait_for("metrics").retain
