"""SIGTERM and SIGINT, handed to the main thread through a pipe.

A signal handler runs in the main thread between two bytecodes, possibly while that thread holds
a lock that the handler would need (setting a ``threading.Event`` takes one): so the handlers
installed here do nothing but let CPython write the signal's number into a pipe
(``signal.set_wakeup_fd``, async-signal-safe), and :meth:`SignalPipe.wait` reads it in plain
code. Unlike ``sigtimedwait``, this is not confused by SIGSTOP/SIGCONT (a debugger, a
benchmark freezing the process).
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing (the wakeup pipe carries the signal)."""


class SignalPipe:
    """While entered: ``signals`` arrive as numbers in a pipe that :meth:`wait` reads."""

    def __init__(self, signals: Sequence[signal.Signals]) -> None:
        """Hand over ``signals`` (installed on enter, restored on exit; main thread only)."""
        self.signals = tuple(signals)
        self._previous: dict[signal.Signals, Any] = {}
        self._read = self._write = -1
        self._old_fd = -1

    def __enter__(self) -> SignalPipe:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, _ignore) for sig in self.signals}
        return self

    def wait(self, timeout: float) -> signal.Signals | None:
        """The first of ``signals`` that arrived within ``timeout`` seconds, or None."""
        readable, _, _ = select.select([self._read], [], [], timeout)
        if not readable:
            return None
        try:
            data = os.read(self._read, 64)
        except BlockingIOError:
            return None
        for number in data:
            if number in {int(sig) for sig in self.signals}:
                return signal.Signals(number)
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_fd)
        os.close(self._read)
        os.close(self._write)
