"""The state database on a real SQLite file: one row per sample, the head in one transaction."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pytest

from personalizer.errors import StateFileError, StateWriteError
from personalizer.model.head_state import HeadState
from personalizer.store import StateDatabase


def features(seed: int, shape: tuple[int, ...] = (5, 5, 8)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 6, shape).astype(np.float32)


def test_samples_are_rows_and_ids_are_never_reused(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    db.classes.replace({0: "cup", 3: "pen"})
    first = db.samples.add(0, features(1), "mqtt", 10.0, b"jpeg-1")
    second = db.samples.add(3, features(2), "button", 11.0, None)
    assert (first, second) == (1, 2)
    assert db.samples.counts() == {0: 1, 3: 1}
    assert db.samples.delete(second) and not db.samples.delete(second)
    third = db.samples.add(3, features(3), "web", 12.0, b"jpeg-3")
    assert third == 3, "a deleted id is not given out again"
    assert db.samples.relabel(third, 0) and db.samples.counts() == {0: 2}
    page, total = db.samples.page(slot=0, offset=1, limit=1)
    assert total == 2 and [s.id for s in page] == [third] and page[0].has_image
    assert db.samples.image(first) == b"jpeg-1" and db.samples.image(second) is None
    rows = list(db.samples.rows((5, 5, 8), batch=1))
    assert [r.id for r in rows] == [first, third]
    stored = rows[0].bottleneck
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(stored, features(1).astype(np.float16))
    assert (
        db.classes.remove(0) == 2 and db.classes.all() == {3: "pen"} and db.samples.counts() == {}
    )
    db.close()


def test_the_head_is_saved_whole_and_bitwise(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    params = (features(4, (200, 4)), features(5, (4,)))
    state = (features(6, (200, 4)), np.float32(3.0).reshape(()))
    db.head.save(HeadState("bundle-a", params, state, steps=7, epochs=2))
    db.close()
    again = StateDatabase(tmp_path / "state.db").head.load()
    assert again is not None and (again.bundle_id, again.steps, again.epochs) == ("bundle-a", 7, 2)
    for got, want in zip(again.parameters + again.optimizer_state, params + state, strict=True):
        assert got.dtype == np.float32 and got.shape == want.shape
        assert got.tobytes() == np.asarray(want).tobytes()


@pytest.mark.parametrize("blob", [b"\x80\x04K\x01.", bytes(8)], ids=["odd-size", "too-short"])
def test_a_saved_head_of_the_wrong_size_is_refused_as_damaged(tmp_path: Path, blob: bytes) -> None:
    db = StateDatabase(tmp_path / "state.db")
    db.head.save(HeadState("b", (features(1, (3, 2)),), (), 1, 1))
    db.close()
    with sqlite3.connect(tmp_path / "state.db") as raw:
        raw.execute("UPDATE tensors SET data = ?, crc = ?", (blob, zlib.crc32(blob)))
    with pytest.raises(StateFileError, match="wrong size"):
        StateDatabase(tmp_path / "state.db").head.load()


def test_a_transaction_that_fails_half_way_changes_nothing(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    db.head.save(HeadState("b", (features(1, (3,)),), (), 1, 1))
    with pytest.raises(RuntimeError), db.transaction() as connection:
        connection.execute("DELETE FROM tensors")
        raise RuntimeError("power cut in the middle")
    assert db.head.load().parameters[0].shape == (3,)


def test_a_disk_full_error_is_an_oserror_with_the_reason(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    with db.transaction() as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages + 2}")
    big = np.zeros(20 * page_size, dtype=np.float32)
    with pytest.raises(StateWriteError) as raised:
        db.samples.add(0, big, "mqtt", 1.0, None)
    assert isinstance(raised.value, OSError) and "No space left on device" in str(raised.value)
    assert db.samples.counts() == {}


@pytest.mark.parametrize(
    "content",
    [b"not a database at all, just text" * 10, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "truncated-header"],
)
def test_a_file_that_is_not_a_state_database_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match="state.db"):
        StateDatabase(path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    other.execute("INSERT INTO meta VALUES ('format', 'someone-else')")
    other.commit()
    other.close()
    with pytest.raises(StateFileError, match="not a personalizer state database"):
        StateDatabase(path)


def test_a_backup_is_a_consistent_copy_while_writing(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    db.classes.replace({0: "cup"})
    for i in range(20):
        db.samples.add(0, features(i), "mqtt", float(i), b"x" * 100)
    db.backup_to(tmp_path / "copy.db")
    db.samples.add(0, features(99), "mqtt", 99.0, None)
    copy = StateDatabase(tmp_path / "copy.db")
    assert copy.samples.counts() == {0: 20} and copy.classes.all() == {0: "cup"}
    assert copy.samples.next_id() == 21


def test_another_process_writing_is_noticed(tmp_path: Path) -> None:
    db = StateDatabase(tmp_path / "state.db")
    before = db.data_version
    db.samples.add(0, features(1), "mqtt", 1.0, None)
    assert db.data_version == before, "its own writes do not count"
    other = StateDatabase(tmp_path / "state.db")
    other.samples.add(0, features(2), "mqtt", 2.0, None)
    assert db.data_version != before
