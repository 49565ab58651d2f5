"""The races found by reading the locking, each pinned down by a test that fails without its fix.

They run the engine in this process (tests/support/engine.py): real model, real state database,
the threads of the daemon played by threads of the test.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from personalizer.service.loops import reload_if_changed_elsewhere
from personalizer.store import StateDatabase
from personalizer.store.exchange import export_state, import_state
from personalizer.store.head_table import HeadTable
from tests.support import photos
from tests.support.engine import CLASSES, engine_rig


@pytest.fixture
def fast_switching():
    """Let threads change hands as often as the interpreter allows: a race gets its chance."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _teach(rig, per_class: int = 2) -> None:
    for name in rig.model.classes:
        for i in range(per_class):
            rig.run("sample", {"class": name, "image": photos.variant(name, i, 96)})


def test_class_storms_while_frames_are_classified_and_samples_arrive(
    tmp_path: Path, bundle: Path, fast_switching, caplog
) -> None:
    taught = CLASSES[:3]  # a slot of the bundle's 4 stays free for the storm
    rig = engine_rig(tmp_path, bundle, taught)
    _teach(rig)
    frames = [photos.photo(name, 96) for name in CLASSES]
    stop = threading.Event()
    errors: list[BaseException] = []
    classified = [0]

    bottlenecks = [rig.model.bottleneck(frame) for frame in frames]

    def frame_thread() -> None:
        # Mostly the head and the ranking on ready bottlenecks (fast: many interleavings with
        # the storm), now and then the whole path from a frame.
        while not stop.is_set():
            try:
                for bottleneck in bottlenecks:
                    rig.model.classify_bottleneck(bottleneck)
                    rig.model.predict_bottleneck(bottleneck)
                rig.model.classify(frames[classified[0] % 4], current=False)
                classified[0] += 1
            except BaseException as exc:  # noqa: BLE001 - any of them is the failure
                errors.append(exc)
                return

    thread = threading.Thread(target=frame_thread)
    thread.start()
    try:
        for round_ in range(100):
            rig.run("class", {"add": f"extra{round_}"})
            rig.run("sample", {"class": f"extra{round_}", "image": frames[round_ % 4]})
            rig.run("class", {"rename": f"extra{round_}", "to": f"renamed{round_}"})
            rig.run("class", {"remove": f"renamed{round_}"})
        before = classified[0]
        deadline = time.monotonic() + 10
        while classified[0] == before and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors
    assert classified[0] > before, "predictions stopped flowing"
    assert rig.model.classes == taught
    counts = rig.store.db.samples.counts()
    assert rig.model.samples() == {name: counts.get(slot, 0) for slot, name in enumerate(taught)}
    assert rig.model.samples() == dict.fromkeys(taught, 2)


def test_a_sample_during_an_epoch_keeps_retrain_needed(tmp_path: Path, bundle: Path) -> None:
    rig = engine_rig(tmp_path, bundle, training={"imprint": False})
    _teach(rig, per_class=3)
    rig.engine.trainer.start()
    head = rig.model._head
    real_step = head._step
    added = []

    def step_then_a_sample(*args):
        loss = real_step(*args)
        if not added:  # the command thread takes a sample while the epoch runs
            added.append(rig.run("sample", {"class": "cat", "image": photos.variant("cat", 9)}))
        return loss

    head._step = step_then_a_sample
    rig.engine.trainer.run_epoch()  # the epoch ends after the sample came: loss is published
    rig.engine.trainer.stop(save=False)
    assert rig.events.of("loss") and added
    assert rig.model.needs_training
    assert rig.engine.status.report().needs_training
    assert any("train again" in w for w in rig.engine.status.report().warnings)


def test_an_import_during_an_autosave_is_always_loaded(
    tmp_path: Path, bundle: Path, monkeypatch
) -> None:
    donor = engine_rig(tmp_path / "donor", bundle)
    _teach(donor, per_class=1)
    donor.store.close()
    exported = tmp_path / "donor.db"
    export_state(donor.store.path, exported)

    rig = engine_rig(tmp_path / "board", bundle)
    _teach(rig, per_class=1)
    real_save = HeadTable.save

    def save_then_an_import(self, saved, extra_meta={}):  # noqa: B006 - the signature it wraps
        real_save(self, saved, extra_meta)
        # `personalizer import` commits from another process right after the autosave did.
        import_state(exported, rig.store.path, "merge", rig.model.bundle_id, rig.model.capacity)

    monkeypatch.setattr(HeadTable, "save", save_then_an_import)
    rig.store.save(rig.model)
    monkeypatch.setattr(HeadTable, "save", real_save)
    assert rig.store.changed_elsewhere()
    reload_if_changed_elsewhere(rig.engine)
    assert rig.model.samples() == dict.fromkeys(CLASSES, 2)


def test_a_reload_during_a_save(tmp_path: Path, bundle: Path) -> None:
    rig = engine_rig(tmp_path, bundle, state={"store_images": False})
    _teach(rig, per_class=1)
    # Another process makes the database one of another bundle's samples without images: the
    # reload has to set it aside and start afresh, replacing the database under the store.
    other = StateDatabase(rig.store.path)
    other.set_meta({"samples_bundle": "another-bundle", "bottleneck_shape": [3, 3, 1280]})
    other.close()
    real_save = HeadTable.save
    reloading = threading.Event()
    errors: list[BaseException] = []

    def slow_save(self, saved, extra_meta={}):  # noqa: B006 - the signature it wraps
        reloading.wait(5)
        time.sleep(0.3)  # the reload, if nothing holds it back, replaces the database now
        real_save(self, saved, extra_meta)

    HeadTable.save = slow_save
    try:

        def trainer_thread() -> None:
            try:
                rig.store.save(rig.model)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        saver = threading.Thread(target=trainer_thread)
        saver.start()
        time.sleep(0.05)
        reloading.set()
        outcome = rig.store.reload(rig.model)
        saver.join(10)
    finally:
        HeadTable.save = real_save
    assert not errors, errors
    assert outcome.set_aside is not None
    assert rig.model.samples() == dict.fromkeys(CLASSES, 0)
    rig.store.save(rig.model)  # and the store works on the new database


def test_no_database_read_under_the_lock_the_frame_path_takes(tmp_path: Path, bundle: Path) -> None:
    rig = engine_rig(tmp_path, bundle)
    _teach(rig, per_class=3)
    samples = rig.model._samples
    real = samples._source
    read_under_lock: list[int] = []
    release = threading.Event()
    release.set()
    reading = threading.Event()

    class WatchedSource:
        """The reader, noting any read made while the sample set's lock is held."""

        def rows(self, ids):
            if samples._lock.locked():
                read_under_lock.append(len(ids))
            reading.set()
            release.wait(5)
            return real.rows(ids)

    samples._source = WatchedSource()
    rig.run("sample_delete", {"id": 1})  # cat's class sum must be read again from the database
    assert reading.is_set() and read_under_lock == []
    # A frame is classified while another thread waits in a database read.
    release.clear()
    reading.clear()
    samples.remove(2)  # another removal makes cat's class sum stale again
    reader = threading.Thread(target=rig.model.open_set)
    reader.start()
    assert reading.wait(5)
    started = time.monotonic()
    result = rig.model.classify(photos.photo("rocket", 96), current=False)
    took = time.monotonic() - started
    release.set()
    reader.join(10)
    assert took < 2.0 and result.class_name in (*CLASSES, "unknown")
    assert read_under_lock == []
    assert np.isfinite(rig.model.open_set().threshold)


def test_train_stop_answers_once_the_head_on_disk_has_every_batch_trained(tmp_path, bundle):
    # A stop arrives while a batch is being trained: the reply must mean the state on disk has
    # that batch (an export or a copy of the file right after gets the trained head).
    rig = engine_rig(tmp_path, bundle)
    for name in CLASSES:
        for i in range(6):
            rig.run("sample", {"class": name, "image": photos.variant(name, i)})
    head = rig.engine.model._head
    original, stepping = head._step, threading.Event()

    def slow_step(*args, **kwargs):
        stepping.set()
        time.sleep(0.3)  # the stop below arrives in here
        return original(*args, **kwargs)

    head._step = slow_step
    rig.run("train", {"action": "start"})
    epoch = threading.Thread(target=rig.engine.trainer.run_epoch)
    epoch.start()
    assert stepping.wait(10)
    rig.run("train", {"action": "stop"})
    saved = rig.store.read(lambda db: db.head.load())
    now = rig.engine.model.head()
    epoch.join(10)
    assert saved is not None and saved.steps == now.steps >= 1
    for on_disk, in_memory in zip(saved.parameters, now.parameters, strict=True):
        assert np.array_equal(on_disk, in_memory)
