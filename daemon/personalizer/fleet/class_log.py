"""The group's class records, and what they make of a sample's label.

A class record says that class ``name`` became *active*, was *renamed* to ``target`` or was
*removed*, at a version (fleet/clock.py). Each board publishes the records it made; every board
keeps the records it heard, a few per name (a name can be renamed away, added again and renamed
once more: :data:`HISTORY`).

The class of a sample is its label followed through the records that came after the label:
:meth:`ClassLog.resolve` takes the earliest rename or removal of the label's name newer than the
label; a rename moves the sample to the target *at the rename's version* and goes on from there;
a removal deletes it. So a late joiner, a board that was away and a board that saw everything in
order all put every sample in the same class. A class is on a board when a live sample resolves
into it or its newest record says it is active.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import ClassRecord, Version

HISTORY = 8  # records kept per class name
MAX_NAMES = 256  # class names with records; the oldest inactive ones are forgotten
MAX_HOPS = 64  # renames followed for one label (each one is later than the last: no loop)


class ClassLog:
    """The class records heard from the group (and made here), by name and version."""

    def __init__(self, records: Iterable[ClassRecord] = ()) -> None:
        """A log holding ``records``."""
        self._by_name: dict[str, list[ClassRecord]] = {}
        for record in records:
            self.add(record)

    def add(self, record: ClassRecord) -> bool:
        """Keep ``record``; False when it was known already, or older than the history kept."""
        known = self._by_name.setdefault(record.name, [])
        if any(r.version == record.version for r in known):
            return False
        known.append(record)
        known.sort(key=lambda r: r.version)
        if len(known) > HISTORY:
            del known[0]
            return record in known
        return True

    def forget_beyond_limits(self) -> list[ClassRecord]:
        """Trim the log to its limits; the records forgotten (the oldest beyond :data:`HISTORY`
        per name, then names whose newest record is not active, oldest first)."""
        gone: list[ClassRecord] = []
        for records in self._by_name.values():
            while len(records) > HISTORY:
                gone.append(records.pop(0))
        if len(self._by_name) > MAX_NAMES:
            inactive = sorted(
                (records[-1].version, name)
                for name, records in self._by_name.items()
                if records[-1].state != "active"
            )
            for _, name in inactive[: len(self._by_name) - MAX_NAMES]:
                gone += self._by_name.pop(name)
        return gone

    def records(self) -> list[ClassRecord]:
        """Every record, by name and version."""
        return [r for name in sorted(self._by_name) for r in self._by_name[name]]

    def latest(self, name: str) -> ClassRecord | None:
        """The newest record of ``name``, or None."""
        known = self._by_name.get(name)
        return known[-1] if known else None

    def resolve(self, name: str, version: Version) -> tuple[str, Version] | None:
        """Where a sample labelled ``name`` at ``version`` belongs now: its class and the
        version from which it is there; None when a removal deleted it (see the module doc)."""
        for _ in range(MAX_HOPS):
            later = [
                r
                for r in self._by_name.get(name, ())
                if r.version > version and r.state in ("renamed", "removed")
            ]
            if not later:
                return name, version
            first = later[0]
            if first.state == "removed":
                return None
            assert first.target is not None
            name, version = first.target, first.version
        return name, version
