"""The daemon's samples stay in the state database: memory holds ids, slots and class sums only,
and work on a snapshot whose rows went meanwhile is redone on the samples that are left."""

from __future__ import annotations

import re
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from personalizer import TransferLearningModel
from personalizer.errors import DamagedSampleError, SamplesChanged
from personalizer.model.samples import SampleSet
from personalizer.store import StateDatabase, StateStore
from personalizer.store.sample_reader import SampleReader
from tests.support import photos

SHAPE = (7, 7, 1280)
FEATURES = int(np.prod(SHAPE))
CLASSES = ("cat", "coffee", "rocket", "astronaut")


def _rows(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(SHAPE, dtype=np.float32) * 6 for _ in range(count)]


def _database(path: Path, rows: list[np.ndarray], slots: list[int]) -> StateDatabase:
    db = StateDatabase(path)
    for row, slot in zip(rows, slots, strict=True):
        db.samples.add(slot, row, "test", 0.0, None)
    return db


def _attached(db: StateDatabase) -> SampleSet:
    store = SampleSet(4, FEATURES, channels=SHAPE[-1])  # as the model makes it
    ids, slots = db.samples.index()
    store.attach(SampleReader(db.path, SHAPE), slots, ids, db.samples.next_id())
    return store


def test_an_attached_store_reads_rows_and_keeps_none(tmp_path: Path) -> None:
    rows, slots = _rows(12), [i % 3 for i in range(12)]
    db = _database(tmp_path / "state.db", rows, slots)
    store = _attached(db)
    assert not store.in_memory and store.counts() == [4, 4, 4, 0]
    snapshot = store.snapshot()
    for i in (0, 5, 11):
        np.testing.assert_array_equal(snapshot.bottlenecks[i], rows[i].astype(np.float16))
    taken = snapshot.take([3, 1])
    np.testing.assert_array_equal(taken[0], rows[3].astype(np.float16))
    subset = snapshot.subset(np.array([2, 4]))
    assert subset.ids.tolist() == [3, 5]
    np.testing.assert_array_equal(subset.bottlenecks[1], rows[4].astype(np.float16))
    # The class sums are those of the float16 rows, as an in-memory store has them.
    memory = SampleSet(4, FEATURES)
    for row, slot in zip(rows, slots, strict=True):
        memory.add(row, slot)
    np.testing.assert_allclose(store.class_sums()[0], memory.class_sums()[0], rtol=1e-12)


def test_memory_does_not_grow_with_the_samples(tmp_path: Path) -> None:
    db = _database(tmp_path / "state.db", _rows(4), [0, 1, 2, 3])
    store = _attached(db)
    # 200 x 122.5 KiB of float16 in memory would be 24 MiB; the pooled features (2.5 KiB each,
    # see model/pooled.py) are what memory holds per sample.
    rows = _rows(200, seed=1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, row in enumerate(rows):
        sample_id = db.samples.add(i % 4, row, "test", 0.0, None)
        store.add(row, i % 4, sample_id)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1024 * 1024, f"the store grew by {grown} bytes for 200 samples"
    assert len(store) == 204 and store.counts() == [51, 51, 51, 51]


def test_a_row_gone_under_a_snapshot_is_noticed_and_the_work_redone(tmp_path: Path) -> None:
    rows = _rows(8)
    db = _database(tmp_path / "state.db", rows, [0, 1] * 4)
    store = _attached(db)
    snapshot = store.snapshot()
    gone = int(snapshot.ids[2])
    db.samples.delete(gone)  # the daemon's order: the database first, then the store
    with pytest.raises(SamplesChanged):
        snapshot.take([0, 2])
    seen = []

    def work(current):
        seen.append(len(current))
        if len(seen) == 1:
            store.remove(gone)  # the removal reaches the store while the work runs
        return [float(row.astype(np.float32).sum()) for row in current.bottlenecks]

    sums = store.using_snapshot(work)
    assert seen == [8, 7] and len(sums) == 7


def test_sums_after_removals_and_relabels_are_read_again(tmp_path: Path) -> None:
    rows = _rows(9)
    slots = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    db = _database(tmp_path / "state.db", rows, slots)
    store = _attached(db)
    memory = SampleSet(4, FEATURES)
    for sample_id, (row, slot) in enumerate(zip(rows, slots, strict=True), start=1):
        memory.add(row, slot, sample_id)  # the database's ids
    for target in (store, memory):
        target.remove(1)
        target.relabel(4, 3)
        target.relabel(7, 0)
        target.clear(2)
    db.samples.delete(1)
    db.samples.relabel(4, 3)
    db.samples.relabel(7, 0)
    db.samples.delete_class(2)
    sums, counts = store.class_sums()
    expected_sums, expected_counts = memory.class_sums()
    assert counts.tolist() == expected_counts.tolist() == [3, 2, 0, 1]
    np.testing.assert_allclose(sums, expected_sums, rtol=1e-9, atol=1e-6)


def test_a_closed_reader_says_so(tmp_path: Path) -> None:
    db = _database(tmp_path / "state.db", _rows(2), [0, 1])
    reader = SampleReader(db.path, SHAPE)
    assert reader.rows([1, 99])[1] is None
    reader.close()
    with pytest.raises(SamplesChanged):
        reader.rows([1])


def _damage(db: StateDatabase, sample_id: int, how: str) -> None:
    """Flip one byte of a bottleneck (its CRC no longer matches), or cut it short with a CRC
    that matches (the size is what is wrong then)."""
    with db.transaction() as conn:
        blob, image = conn.execute(
            "SELECT bottleneck, image FROM samples WHERE id = ?", (sample_id,)
        ).fetchone()
        if how == "flipped":
            blob = bytes([blob[0] ^ 0xFF]) + blob[1:]
            conn.execute("UPDATE samples SET bottleneck = ? WHERE id = ?", (blob, sample_id))
        else:
            blob = blob[:100]
            crc = zlib.crc32(image or b"", zlib.crc32(blob))
            conn.execute(
                "UPDATE samples SET bottleneck = ?, crc = ? WHERE id = ?", (blob, crc, sample_id)
            )


@pytest.mark.parametrize(
    ("how", "why"), [("flipped", "checksum does not match"), ("short", "is not a [7, 7, 1280]")]
)
def test_a_damaged_row_is_never_returned(tmp_path: Path, how: str, why: str) -> None:
    db = _database(tmp_path / "state.db", _rows(3), [0, 1, 2])
    _damage(db, 2, how)
    with pytest.raises(DamagedSampleError, match=f"sample 2 is damaged .*{re.escape(why)}"):
        SampleReader(db.path, SHAPE).rows([1, 2, 3])
    heard: list[dict[int, str]] = []
    listening = SampleReader(db.path, SHAPE, heard.append)
    with pytest.raises(SamplesChanged):
        listening.rows([1, 2, 3])
    assert [list(d) for d in heard] == [[2]] and why in heard[0][2]
    assert all(row is not None for row in listening.rows([1, 3]))


def test_training_goes_on_when_a_sample_goes_during_an_epoch(bundle: Path, tmp_path: Path) -> None:
    model = TransferLearningModel(bundle, CLASSES, num_threads=1, seed=0)
    store = StateStore(tmp_path)
    store.open(model)
    slots = {name: slot for slot, name in model.class_slots().items()}
    for i in range(6):
        for name in CLASSES:
            bottleneck = model.bottleneck(photos.variant(name, i))
            sample_id = store.add_sample(slots[name], bottleneck, "test", 0.0, None)
            model.add_sample_bottleneck(bottleneck, name, sample_id)
    assert not model._samples.in_memory
    source = model._samples._source
    reads = []

    class Racing:
        """The reader, with a sample of its second read deleted (database, then model) first."""

        def rows(self, ids):
            reads.append(len(ids))
            if len(reads) == 2:
                store.delete_sample(ids[0])
                model.remove_sample(ids[0])
            return source.rows(ids)

    model._samples._source = Racing()
    loss = model.train(3)
    assert np.isfinite(loss) and model.epochs == 3
    # 2 batches per epoch: the first epoch broke off at its second batch, then 3 whole ones.
    assert len(reads) == 2 + 3 * 2
    assert sum(model.samples().values()) == 23
    store.close()
