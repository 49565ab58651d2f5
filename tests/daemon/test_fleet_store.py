"""The state database of schema 2: where a fleet sample came from, and older files."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pytest

from personalizer.errors import StateFileError
from personalizer.store import StateDatabase
from personalizer.store.exchange import export_state, import_state
from personalizer.store.sqlite_file import SCHEMA_VERSION

# A state file as version 1.1 of the daemon wrote it (schema 1: no uid or origin).
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (slot INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT, slot INTEGER NOT NULL,
    source TEXT NOT NULL, created REAL NOT NULL, bottleneck BLOB NOT NULL, image BLOB,
    crc INTEGER NOT NULL);
CREATE TABLE set_aside_samples (id INTEGER PRIMARY KEY, slot INTEGER NOT NULL,
    source TEXT NOT NULL, created REAL NOT NULL, bottleneck BLOB NOT NULL, image BLOB,
    crc INTEGER NOT NULL, reason TEXT NOT NULL, set_aside REAL NOT NULL);
CREATE TABLE tensors (kind TEXT NOT NULL, idx INTEGER NOT NULL, dtype TEXT NOT NULL,
    shape TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (kind, idx));
INSERT INTO meta VALUES ('format', 'personalizer-state'), ('schema_version', '1');
INSERT INTO classes VALUES (0, 'cup'), (1, 'pen');
"""


def schema_1_file(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
        blob = np.ones((4,), np.float16).tobytes()
        for slot, image in ((0, b"jpeg"), (1, None)):
            check = zlib.crc32(image or b"", zlib.crc32(blob))
            db.execute(
                "INSERT INTO samples (slot, source, created, bottleneck, image, crc) "
                "VALUES (?, 'button', 1.0, ?, ?, ?)",
                (slot, blob, image, check),
            )
    db.close()
    return path


def test_a_schema_1_file_is_migrated_in_place_and_keeps_its_samples(tmp_path: Path) -> None:
    path = schema_1_file(tmp_path / "state.db")
    db = StateDatabase(path)
    assert db.meta("schema_version") == str(SCHEMA_VERSION) == "2"
    page, total = db.samples.page()
    assert total == 2 and [s.origin for s in page] == [None, None]
    assert db.samples.image(1) == b"jpeg", "the rows' checksums still hold"
    uid = "ab" * 16
    with db.transaction():
        db.fleet.set_uid(1, uid, "kitchen")
    assert db.samples.info(1).origin == "kitchen"
    with pytest.raises(sqlite3.IntegrityError):
        db.samples.add(0, np.ones((4,), np.float32), "fleet", 2.0, None, uid, "hall")
    db.samples.set_aside({1: "a test"}, 3.0)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT uid, origin FROM set_aside_samples").fetchall() == [
            (uid, "kitchen")
        ]
    db.close()
    assert StateDatabase(path).meta("schema_version") == "2", "a migrated file opens again"


def test_a_file_of_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = schema_1_file(tmp_path / "state.db")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(StateFileError, match="schema 9; this personalizer reads 2 and older"):
        StateDatabase(path)


def test_export_and_import_carry_where_fleet_samples_came_from(tmp_path: Path) -> None:
    board = StateDatabase(tmp_path / "board.db")
    board.classes.replace({0: "cup"})
    board.samples.add(0, np.ones((4,), np.float32), "fleet", 1.0, b"j", "cd" * 16, "hall")
    board.set_meta({"samples_bundle": "b1", "bottleneck_shape": [4]})
    board.close()
    export_state(tmp_path / "board.db", tmp_path / "copy.db")
    import_state(tmp_path / "copy.db", tmp_path / "other.db", "replace", "b1", 4)
    other = StateDatabase(tmp_path / "other.db")
    info = other.samples.page()[0][0]
    assert (info.source, info.origin) == ("fleet", "hall")
    other.close()
    # A file of schema 1 (exported by an older daemon) imports too.
    old = schema_1_file(tmp_path / "old.db")
    with sqlite3.connect(old) as raw:
        raw.execute("INSERT INTO meta VALUES ('samples_bundle', 'b1'), ('bottleneck_shape', '[4]')")
    raw.close()
    import_state(old, tmp_path / "other.db", "merge", "b1", 4)
    merged = StateDatabase(tmp_path / "other.db")
    assert merged.samples.page()[1] == 3
