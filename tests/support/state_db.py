"""Reading the daemon's state database from a test, as another process would (read-only)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)


def saved_samples(path: Path) -> int:
    """How many samples the database at ``path`` holds (committed ones)."""
    with _connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


def saved_counts(path: Path) -> dict[str, int]:
    """class name -> committed samples."""
    with _connect(path) as db:
        rows = db.execute(
            "SELECT classes.name, COUNT(samples.id) FROM classes LEFT JOIN samples "
            "ON samples.slot = classes.slot GROUP BY classes.slot ORDER BY classes.slot"
        ).fetchall()
    return {name: int(n) for name, n in rows}


def state_digest(path: Path) -> str:
    """A digest of what the database holds (classes, every sample, the head, the counters):
    equal digests, equal state, whatever SQLite's page layout."""
    return _digest(
        path,
        "SELECT slot, name FROM classes ORDER BY slot",
        "SELECT id, slot, source, created, bottleneck, image FROM samples ORDER BY id",
        "SELECT kind, idx, dtype, shape, data FROM tensors ORDER BY kind, idx",
        "SELECT key, value FROM meta WHERE key IN ('steps', 'epochs', 'parameters_bundle', "
        "'samples_bundle') ORDER BY key",
    )


def saved_steps(path: Path) -> int:
    """The optimizer steps of the saved head (0: none saved)."""
    with _connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'steps'").fetchone()
    return int(row[0]) if row else 0


def head_digest(path: Path) -> str:
    """A digest of the saved head alone (parameters, optimizer state, counters)."""
    return _digest(
        path,
        "SELECT kind, idx, dtype, shape, data FROM tensors ORDER BY kind, idx",
        "SELECT key, value FROM meta WHERE key IN ('steps', 'epochs', 'parameters_bundle') "
        "ORDER BY key",
    )


def _digest(path: Path, *queries: str) -> str:
    digest = hashlib.sha256()
    with _connect(path) as db:
        for query in queries:
            for row in db.execute(query):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def check_integrity(path: Path) -> str:
    """SQLite's own verdict on the file ("ok" when sound)."""
    with _connect(path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
