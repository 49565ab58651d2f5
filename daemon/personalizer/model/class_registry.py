"""The class registry: which class holds which of the bundle's class slots.

A bundle has ``num_classes`` output slots (its capacity); the classes of the board occupy some
of them. This module is the only authority on that mapping and on which slot a new class takes
(:func:`first_free_slot`), for the model, the commands and the state loading alike.

Threads: the mapping is copy-on-write. Every change builds a new read-only mapping and publishes
it with one assignment, so a reader (the frame thread ranking scores) takes :attr:`slots` once
and works on a complete, unchanging set, whatever the command thread does meanwhile. Changes
are serialised by the registry's own lock, which is never held while anything else is locked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ..class_names import class_name_problem
from ..errors import ClassListError, StateFileError, UnknownClassError


def first_free_slot(used: Iterable[int], capacity: int) -> int | None:
    """The lowest slot below ``capacity`` that ``used`` does not hold (None: all are used)."""
    taken = set(used)
    return next((slot for slot in range(capacity) if slot not in taken), None)


def check_name(name: object) -> str:
    """``name`` when it is a usable class name; ClassListError saying why otherwise."""
    reason = class_name_problem(name)
    if reason:
        raise ClassListError(f"class name {name!r} {reason}")
    return name  # type: ignore[return-value]


def full_message(capacity: int, names: Sequence[str]) -> str:
    """What to say when a class is added to a bundle whose slots are all in use."""
    listed = ", ".join(names)
    return (
        f"this model has room for {capacity} classes and all are in use ({listed}): remove one "
        "first (or convert a bundle with a larger --num_classes)"
    )


class ClassRegistry:
    """Class name per slot of one bundle; safe to read from any thread (see module doc)."""

    def __init__(self, capacity: int, names: Sequence[str]) -> None:
        """``names`` take slots 0, 1, ... (checked: unique, usable, at most ``capacity``)."""
        self.capacity = capacity
        self._lock = threading.Lock()
        self._slots: Mapping[int, str] = MappingProxyType(
            dict(enumerate(checked_names(names, capacity)))
        )

    @property
    def slots(self) -> Mapping[int, str]:
        """slot -> name of the active classes, by slot (read-only; a new one after a change)."""
        return self._slots

    @property
    def names(self) -> tuple[str, ...]:
        """The active class names, in slot order."""
        return tuple(self._slots.values())

    def slot_of(self, name: str) -> int:
        """The slot of class ``name``; UnknownClassError naming the classes otherwise."""
        for slot, known in self._slots.items():
            if known == name:
                return slot
        listed = ", ".join(self.names) or "(none yet)"
        raise UnknownClassError(f'unknown class "{name}"; the classes are {listed}')

    def active(self, counts: Sequence[int]) -> np.ndarray:
        """Which slots take part in training and inference: a class with samples."""
        active = np.asarray(counts) > 0
        slots = self._slots
        active[[s for s in range(self.capacity) if s not in slots]] = False
        return active

    def next_slot(self) -> int:
        """The slot a new class would take; ClassListError when every slot is in use."""
        slot = first_free_slot(self._slots, self.capacity)
        if slot is None:
            raise ClassListError(full_message(self.capacity, self.names))
        return slot

    def check_new(self, name: str) -> None:
        """ClassListError unless ``name`` is usable and no class has it yet."""
        check_name(name)
        if name in self._slots.values():
            raise ClassListError(f'class "{name}" exists already')

    def add(self, name: str) -> int:
        """Give ``name`` the first free slot and return it."""
        with self._lock:
            self.check_new(name)
            slot = self.next_slot()
            self._publish({**self._slots, slot: name})
        return slot

    def rename(self, old: str, new: str) -> int:
        """Give class ``old`` the name ``new`` (its slot stays); returns the slot."""
        with self._lock:
            slot = self.slot_of(old)
            if new != old:
                self.check_new(new)
                self._publish({**self._slots, slot: new})
        return slot

    def remove(self, name: str) -> int:
        """Free the slot of class ``name`` and return it."""
        with self._lock:
            slot = self.slot_of(name)
            self._publish({s: n for s, n in self._slots.items() if s != slot})
        return slot

    def replace(self, slots: Mapping[int, str]) -> list[int]:
        """Make ``slots`` (slot -> name) the classes; returns the slots that were dropped."""
        for slot, name in slots.items():
            if not 0 <= slot < self.capacity:
                raise ClassListError(f"slot {slot} is outside the bundle's {self.capacity} slots")
            check_name(name)
        if len(set(slots.values())) != len(slots):
            raise ClassListError(f"class names must be unique, got {sorted(slots.values())}")
        with self._lock:
            dropped = sorted(set(self._slots) - set(slots))
            self._publish(dict(slots))
        return dropped

    def check_slots(self, slots: Iterable[int]) -> None:
        """StateFileError when samples refer to ``slots`` that hold no class."""
        unknown = sorted({s for s in slots if s not in self._slots})
        if unknown:
            raise StateFileError(f"samples of class slots {unknown}, which have no class")

    def _publish(self, slots: Mapping[int, str]) -> None:
        self._slots = MappingProxyType(dict(sorted(slots.items())))


def checked_names(classes: Sequence[str] | None, capacity: int) -> tuple[str, ...]:
    """``classes`` when they fit a bundle of ``capacity`` slots; ClassListError otherwise."""
    if classes is None:
        return ()
    if isinstance(classes, str):
        raise ClassListError(f"classes must be a list of names, got the string {classes!r}")
    names = tuple(classes)
    if len(names) > capacity:
        raise ClassListError(
            f"{len(names)} classes given ({list(names)}) but the bundle has room for "
            f"{capacity} (its --num_classes); give at most {capacity} names or convert with "
            f"--num_classes {len(names)} or more"
        )
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if bad:
        raise ClassListError(f"class names must be non-empty strings, got {bad!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassListError(f"class names must be unique, {duplicates} appear more than once")
    return names
