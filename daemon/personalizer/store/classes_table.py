"""The ``classes`` table: slot -> name, the active classes and the output slot each one uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sqlite_file import StateDatabase

CLASSES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS classes (slot INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
)


class ClassTable:
    """The classes of one state database."""

    def __init__(self, db: StateDatabase) -> None:
        """The table of ``db``."""
        self._db = db

    def all(self) -> dict[int, str]:
        """slot -> class name, by slot."""
        rows = self._db.query("SELECT slot, name FROM classes ORDER BY slot")
        return {int(slot): str(name) for slot, name in rows}

    def replace(self, classes: Mapping[int, str]) -> None:
        """Replace the class table (slot -> name) in one transaction."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM classes")
            db.executemany("INSERT INTO classes (slot, name) VALUES (?, ?)", classes.items())

    def move(self, old: int, new: int) -> None:
        """Move a class (its name and samples) from slot ``old`` to the free slot ``new``."""
        with self._db.transaction() as db:
            db.execute("UPDATE classes SET slot = ? WHERE slot = ?", (new, old))
            db.execute("UPDATE samples SET slot = ? WHERE slot = ?", (new, old))

    def remove(self, slot: int) -> int:
        """Remove a class and all its samples; returns how many samples went."""
        with self._db.transaction() as db:
            removed = db.execute("DELETE FROM samples WHERE slot = ?", (slot,)).rowcount
            db.execute("DELETE FROM classes WHERE slot = ?", (slot,))
        return int(removed)
