"""The order of changes across boards: versions, and the clock that makes them.

Every change a board makes to the group's samples and classes (a sample taken, relabelled or
deleted, a class added, renamed or removed) carries a *version* ``(ts, board)``:

- ``ts`` comes from a hybrid clock (:class:`FleetClock`): the board's wall clock, but never
  lower than its own last version nor than any version it has heard from the group (plus a
  millisecond). A change made after a board saw another change is ordered after it, even when
  its clock lags; clocks that are roughly right (NTP) keep the order people see.
- Versions compare by ``ts``, then by board name (a tie goes to the greater name): an order
  every board computes the same way from the same records, whatever order they arrived in.
- A version from more than :data:`MAX_AHEAD` seconds in the future (a board with a wrong clock)
  still orders its own record, but does not drag this board's clock along.

The rules built on it (fleet/class_log.py, fleet/applier.py): for each sample the label with
the greatest version wins; a deletion is final (a deleted sample never comes back, whatever
version a label racing it had: its picture leaves the broker with it); for each class name the
record with the greatest version says whether it is there, was renamed or removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .records import Version

log = logging.getLogger(__name__)

STEP = 0.001  # seconds between two versions of one board
MAX_AHEAD = 600.0  # seconds a heard version may be ahead of this board's clock and still count
UNSET = 1e9  # a clock before 2001 was never set (a board without a clock battery, before NTP)


class FleetClock:
    """Versions for this board's changes (see the module doc)."""

    def __init__(self, board: str, last: float = 0.0, now: Callable[[], float] = time.time):
        """Versions of ``board``, after ``last`` (the newest version already on record)."""
        self.board = board
        self._now = now
        self._last = last
        self._warned = False

    def heard(self, version: Version) -> None:
        """A version from the group: later changes here are ordered after it."""
        ts = version[0]
        if ts <= self._now() + MAX_AHEAD:
            self._last = max(self._last, ts)

    def next(self) -> Version:
        """The version of a change made now."""
        now = self._now()
        if now < UNSET and not self._warned:
            self._warned = True
            log.warning(
                "fleet: this board's clock says %s, so its changes lose against those of the "
                "other boards until it has heard newer ones; set its time (NTP)",
                time.strftime("%Y-%m-%d", time.gmtime(now)),
            )
        self._last = max(now, self._last + STEP)
        return (self._last, self.board)
