"""Every command's handler, in this process: the engine with a real model and state database,
and a recording event sink in place of MQTT (tests/support/engine.py). Milliseconds each; the
same commands over a real broker are in test_daemon_commands.py."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from personalizer.commands import Command, CommandError, CommandLimits
from personalizer.service.jobs import CommandQueue, Job
from personalizer.service.loops import command_loop
from tests.support import photos
from tests.support.engine import CLASSES, engine_rig
from tests.support.waiting import wait_until


@pytest.fixture
def rig(tmp_path: Path, bundle: Path):
    return engine_rig(tmp_path, bundle)


def refused(rig, name: str, fields: dict) -> str:
    with pytest.raises(CommandError) as caught:
        rig.run(name, fields)
    return caught.value.reason


def test_sample_takes_the_camera_frame_or_the_given_image(rig) -> None:
    assert "no camera frame yet" in refused(rig, "sample", {"class": "cat"})
    rig.show(photos.photo("cat"))
    first = rig.run("sample", {"class": "cat"}, "button")
    second = rig.run("sample", {"class": "cat", "image": photos.variant("cat", 1)})
    assert (first["count"], second["count"]) == (1, 2)
    assert second["sample_id"] > first["sample_id"]
    events = rig.events.of("sample")
    assert [(e.class_name, e.count, e.source) for e in events] == [
        ("cat", 1, "button"),
        ("cat", 2, "mqtt"),
    ]
    assert rig.events.last("status").samples["cat"] == 2
    assert rig.store.db.samples.counts() == {0: 2}  # durable before the answer
    assert 'unknown class "dog"' in refused(rig, "sample", {"class": "dog"})


def test_listing_deleting_relabelling_and_thumbnails(rig) -> None:
    for name in ("cat", "cat", "coffee"):
        rig.run("sample", {"class": name, "image": photos.photo(name)})
    listing = rig.run("samples", {"class": "cat"})
    assert listing["total"] == 2 and [s["class"] for s in listing["samples"]] == ["cat", "cat"]
    first = listing["samples"][0]["id"]
    moved = rig.run("relabel", {"id": first, "class": "rocket"})
    assert moved["from"] == "cat" and moved["samples"]["rocket"] == 1
    jpeg = base64.b64decode(rig.run("thumbnail", {"id": first})["image"])
    assert jpeg[:2] == b"\xff\xd8"
    assert rig.run("sample_delete", {"id": first})["samples"]["rocket"] == 0
    assert "there is no sample" in refused(rig, "sample_delete", {"id": first})


def test_class_changes_reset_and_what_the_status_says(rig) -> None:
    rig.run("sample", {"class": "coffee", "image": photos.photo("coffee")})
    assert rig.run("class", {"rename": "coffee", "to": "tea"})["classes"][1] == "tea"
    assert rig.run("class", {"remove": "tea"})["classes"] == ["cat", "rocket", "astronaut"]
    assert rig.run("class", {"add": "lamp"})["classes"] == ["cat", "lamp", "rocket", "astronaut"]
    assert "room for 4 classes" in refused(rig, "class", {"add": "mug"})
    rig.run("sample", {"class": "lamp", "image": photos.photo("coffee")})
    assert rig.run("reset", {"class": "lamp"})["removed"] == 1
    rig.run("sample", {"class": "cat", "image": photos.photo("cat")})
    assert rig.run("reset", {"all": True})["samples"] == dict.fromkeys(
        ["cat", "lamp", "rocket", "astronaut"], 0
    )
    assert rig.events.last("status").classes == ("cat", "lamp", "rocket", "astronaut")


def test_train_save_evaluate_and_classify(rig) -> None:
    assert "no samples to train on" in refused(rig, "train", {"action": "start"})
    for name in CLASSES:
        for i in range(3):
            rig.run("sample", {"class": name, "image": photos.variant(name, i)})
    assert rig.run("train", {"action": "start"})["state"] == "training"
    rig.engine.trainer.run_epoch()
    assert rig.events.last("loss").epoch == 1
    assert rig.run("train", {"action": "stop"})["state"] == "idle"
    assert rig.run("save", {})["bytes"] > 0
    report = rig.run("evaluate", {})
    assert report["samples"] == 12 and rig.events.last("metrics").samples == 12
    result = rig.run("classify", {"image": photos.photo("rocket")})
    assert result["class"] in (*CLASSES, "unknown") and set(result["scores"]) == set(CLASSES)


def test_the_command_queue_answers_every_job_and_refuses_when_full_or_stopping(rig) -> None:
    stop = threading.Event()
    limits = CommandLimits(4096 * 4096, 2 * 1024 * 1024)
    jobs = CommandQueue(rig.engine.execute, limits, stop)
    answers: list[dict] = []
    assert jobs.put(Job("samples", b'{"request_id": 7}', None, answers.append))
    assert jobs.put(Job("nope", b"{}", None, answers.append))
    assert jobs.put(Job("x", None, Command.local("save", {}, "web"), answers.append))
    while (job := jobs.next(0.01)) is not None:
        jobs.run(job)
    assert answers[0]["ok"] and answers[0]["request_id"] == 7
    assert not answers[1]["ok"] and 'unknown command "nope"' in answers[1]["error"]
    assert answers[2]["ok"] and answers[2]["bytes"] > 0
    while jobs.put(Job("save", b"{}", None, answers.append)):
        pass
    assert answers[-1] == {"ok": False, "error": answers[-1]["error"], "request_id": None}
    assert "busy" in answers[-1]["error"]
    stop.set()
    assert not jobs.put(Job("save", b"{}", None, answers.append))
    assert "stopping" in answers[-1]["error"]


def test_every_change_of_samples_and_classes_is_told_to_the_listeners(rig) -> None:
    heard: list = []
    rig.engine.changes.add(heard.append)
    rig.engine.changes.add(lambda change: 1 / 0)  # a broken listener harms nobody
    first = rig.run("sample", {"class": "cat", "image": photos.photo("cat")})["sample_id"]
    second = rig.run("sample", {"class": "cat", "image": photos.variant("cat", 1)})["sample_id"]
    rig.run("relabel", {"id": first, "class": "coffee"})
    rig.run("sample_delete", {"id": first})
    rig.run("class", {"rename": "cat", "to": "kitten"})
    rig.run("reset", {"class": "kitten"})
    rig.run("class", {"remove": "rocket"})
    rig.run("class", {"add": "lamp"})
    kinds = [type(c).__name__ for c in heard]
    assert kinds == [
        "SampleTaken", "SampleTaken", "SampleRelabelled", "SampleDeleted", "ClassRenamed",
        "SampleDeleted", "ClassRemoved", "ClassAdded",
    ]  # fmt: skip
    assert heard[0].jpeg[:2] == b"\xff\xd8" and heard[0].source == "mqtt"
    assert heard[5].sample_id == second


def test_how_training_ended_and_its_loss_are_kept_across_a_restart(tmp_path, bundle) -> None:
    rig = engine_rig(tmp_path, bundle)
    for name in CLASSES:
        for i in range(3):
            rig.run("sample", {"class": name, "image": photos.variant(name, i)})
    rig.run("train", {"action": "start"})
    rig.engine.trainer.run_epoch()
    rig.run("train", {"action": "stop"})
    ended = rig.engine.status.report()
    assert ended.last_cycle["reason"] == "stopped" and ended.last_loss is not None
    rig.store.close()

    again = engine_rig(tmp_path, bundle)  # the daemon's next start
    report = again.engine.status.report()
    assert report.last_cycle == ended.last_cycle  # the page and Home Assistant say the same
    assert report.last_loss == pytest.approx(ended.last_cycle["loss"], abs=1e-6)
    again.run("reset", {"all": True})
    assert again.engine.status.report().last_cycle is None
    again.store.close()
    assert engine_rig(tmp_path, bundle).engine.status.report().last_cycle is None


def test_a_failing_upkeep_between_commands_is_logged_and_commands_go_on(rig, caplog) -> None:
    # A full disk while the fleet or the state looks after itself must not end the daemon.
    stop = threading.Event()
    jobs = CommandQueue(rig.engine.execute, CommandLimits(4096 * 4096, 2 * 1024 * 1024), stop)
    calls: list[int] = []

    def idle() -> None:
        calls.append(1)
        raise OSError(28, "No space left on device")

    loop = threading.Thread(target=command_loop, args=(stop, jobs, idle), daemon=True)
    loop.start()
    wait_until(lambda: len(calls) >= 2, 5, "the upkeep tried again")
    answers: list[dict] = []
    assert jobs.put(Job("samples", b"{}", None, answers.append))
    wait_until(lambda: answers, 5, "the command answered")
    stop.set()
    loop.join(5)
    assert answers[0]["ok"] and not loop.is_alive()
    assert "the state's upkeep failed (1 in a row)" in caplog.text
