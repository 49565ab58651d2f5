"""save/load: everything comes back bitwise, writes are atomic, foreign or broken files are refused.

A saved model is a state database (the same SQLite file the daemon keeps).
"""

from __future__ import annotations

import os
import pickle
import sqlite3

import numpy as np
import pytest

from personalizer import StateBundleMismatch, StateFileError, StateFileNotFound
from tests.support.synthetic_images import colour_image


@pytest.fixture
def trained(model):
    """The test model with 30 samples, trained for 4 epochs."""
    rng = np.random.default_rng(0)
    for i in range(30):
        model.add_sample(colour_image(i % 4, rng), "ABCD"[i % 4])
    model.clear("D")  # ids with a gap
    model.train(4)
    return model


def test_save_load_save_gives_the_same_state(trained, make_model, bundle, tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    trained.save(first)
    fresh = make_model(bundle)
    fresh.load(first)
    fresh.save(second)
    again = make_model(bundle)
    again.load(second)
    for a, b in zip(again.parameters(), trained.parameters(), strict=True):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(again.optimizer_state(), trained.optimizer_state(), strict=True):
        assert a.tobytes() == b.tobytes()
    ours, theirs = again.sample_snapshot(), trained.sample_snapshot()
    assert ours.ids.tolist() == theirs.ids.tolist()
    assert b"".join(x.tobytes() for x in ours.bottlenecks) == b"".join(
        x.tobytes() for x in theirs.bottlenecks
    )


def test_everything_comes_back(trained, make_model, bundle, tmp_path) -> None:
    path = tmp_path / "state.db"
    trained.save(path)
    restored = make_model(bundle)
    restored.load(path)
    assert restored.samples() == trained.samples() == {"A": 8, "B": 8, "C": 7, "D": 0}
    assert restored.steps == trained.steps and restored.epochs == trained.epochs == 4
    for got, want in zip(restored.parameters(), trained.parameters(), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(restored.optimizer_state(), trained.optimizer_state(), strict=True):
        np.testing.assert_array_equal(got, want)
    a, b = restored.sample_snapshot(), trained.sample_snapshot()
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(np.stack(a.bottlenecks), np.stack(b.bottlenecks))
    assert restored.add_sample(colour_image(0, np.random.default_rng(1)), "A") == 30
    frame = colour_image(2, np.random.default_rng(2))
    assert restored.predict(frame) == trained.predict(frame)


def test_adam_state_continues_across_save_and_load(make_model, bundle, tmp_path) -> None:
    """Train 3 epochs in one go == train 2, save, load into a new model, train 1."""
    rng = np.random.default_rng(0)
    bottlenecks = rng.random((20, 1280)).astype(np.float32)
    labels = np.repeat([0, 1, 2, 3], [8, 6, 4, 2])

    def with_samples():
        model = make_model(bundle)
        for row, label in zip(bottlenecks, labels, strict=True):
            model.add_sample_bottleneck(row, "ABCD"[label])
        return model

    straight = with_samples()
    straight.train(3)  # one batch of all 20 per epoch, so the shuffle does not matter
    interrupted = with_samples()
    interrupted.train(2)
    interrupted.save(tmp_path / "state.db")
    resumed = make_model(bundle)
    resumed.load(tmp_path / "state.db")
    resumed.train(1)
    assert resumed.steps == 3 and float(resumed.optimizer_state()[-1]) == 3.0
    for got, want in zip(resumed.parameters(), straight.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # Dropping the optimizer state (the seed's bug) gives a different result: the check bites.
    forgetful = make_model(bundle)
    forgetful.load(tmp_path / "state.db")
    forgetful._head._opt_state = forgetful._head.fresh_optimizer_state()
    forgetful.train(1)
    assert not np.allclose(forgetful.parameters()[0], straight.parameters()[0], atol=1e-6)


def test_the_state_file_is_a_plain_sqlite_database(trained, tmp_path) -> None:
    path = tmp_path / "state.db"
    trained.save(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 23
        assert dict(db.execute("SELECT slot, name FROM classes")) == dict(enumerate("ABCD"))
        kinds = {row[0] for row in db.execute("SELECT DISTINCT typeof(bottleneck) FROM samples")}
        assert kinds == {"blob"}
    assert sorted(os.listdir(tmp_path)) == ["state.db"], "no WAL, journal or temporary left"


def test_classes_added_and_renamed_come_back(trained, make_model, bundle, tmp_path):
    trained.remove_class("D")
    trained.rename_class("B", "bee")
    trained.add_class("dog")
    trained.save(tmp_path / "state.db")
    restored = make_model(bundle)
    restored.load(tmp_path / "state.db")
    assert restored.class_slots() == {0: "A", 1: "bee", 2: "C", 3: "dog"}
    assert restored.samples() == {"A": 8, "bee": 8, "C": 7, "dog": 0}


def test_empty_model_state_round_trips(model, make_model, bundle, tmp_path) -> None:
    model.save(tmp_path / "empty.db")
    other = make_model(bundle)
    other.load(tmp_path / "empty.db")
    assert other.samples() == dict.fromkeys("ABCD", 0)


def test_a_failed_save_leaves_the_old_file_and_no_temporary(trained, tmp_path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"old")
    os.chmod(tmp_path, 0o500)  # the folder cannot take the temporary file
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OSError):
            trained.save(path)
    finally:
        os.chmod(tmp_path, 0o700)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.db"]


def test_a_save_that_fails_half_way_leaves_the_old_file(trained, tmp_path, monkeypatch) -> None:
    from personalizer.store import head_table

    path = tmp_path / "state.db"
    path.write_bytes(b"old")

    def disk_full(self, saved, extra_meta={}):  # noqa: B006 - the signature it replaces
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(head_table.HeadTable, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trained.save(path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.db"]


def test_state_of_another_bundle_is_refused(make_model, sgd_bundle, trained, tmp_path) -> None:
    path = tmp_path / "state.db"
    trained.save(path)
    other = make_model(sgd_bundle)
    with pytest.raises(StateBundleMismatch, match=f"bundle {trained.bundle_id}"):
        other.load(path)
    assert other.samples() == dict.fromkeys("ABCD", 0)


def test_missing_state_file(model, tmp_path) -> None:
    with pytest.raises(StateFileNotFound):
        model.load(tmp_path / "none.db")


@pytest.mark.parametrize("keep", [0.5, 0.99], ids=["half", "last-bytes-missing"])
def test_truncated_state_file_is_refused(trained, tmp_path, keep) -> None:
    path = tmp_path / "state.db"
    trained.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StateFileError):
        trained.load(path)


def test_a_damaged_page_is_caught_by_sqlites_check(trained, tmp_path) -> None:
    path = tmp_path / "state.db"
    trained.save(path)
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # every page's header: the b-trees break
        data[offset : offset + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(StateFileError, match="damaged|not a usable state database"):
        trained.load(path)


def test_an_old_npz_or_another_sqlite_file_is_refused(model, tmp_path) -> None:
    npz = tmp_path / "other.npz"
    np.savez(npz, weights=np.zeros(3))
    with pytest.raises(StateFileError):
        model.load(npz)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    with pytest.raises(StateFileError, match="not a personalizer state database"):
        model.load(other)


def test_random_bytes_are_refused(model, tmp_path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(StateFileError):
        model.load(path)


def test_a_pickle_is_never_loaded(model, tmp_path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(pickle.dumps({"parameters": [np.zeros(3)]}))
    with pytest.raises(StateFileError):
        model.load(path)
