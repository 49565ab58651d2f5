"""A fleet: boards that share their samples through the broker (README, "A fleet of boards").

Boards with the same ``[fleet] group`` publish every sample taught on them as a retained
message (its model-input JPEG, class, id across boards, time, board) and take the group's
samples, each embedding them with its own base. Deletions, relabels and class changes travel
the same way, ordered by versions (clock.py); a board that joins later or was away catches up
from the broker's retained messages. The parts:

- records.py: the messages and reading them safely; inbox.py: from paho's thread to the
  command thread, bounded;
- clock.py: the order of changes; class_log.py: what class records make of a label;
- ledger.py: what this board knows of the group (tables in store/fleet_table.py);
- applier.py: the group's records into this board; sharing.py: this board's changes out;
- fleet.py: :class:`Fleet`, the wiring, turns in the command thread and the status.
"""

from .fleet import Fleet

__all__ = ["Fleet"]
