"""glibc's allocator, set up for a long-running service that handles large short-lived buffers.

The daemon reads each stored 7x7x1280 sample (122.5 KiB) from SQLite when training, measuring
or evaluating, and frames and tensor copies are of that size too. glibc serves such blocks from
the heap once a freed mmap'ed block has raised its *dynamic* mmap threshold, and keeps one heap
(arena) per thread that allocates: freed blocks stay in the process, scattered over the threads'
heaps. Measured with 1000 7x7 samples (``make bench``, section 5, one run with and one without):
a fixed threshold of 128 KiB and two arenas took 26 MiB off the daemon's peak RSS after two
epochs and an evaluation, and 10 MiB off its RSS after the samples.

A setting the user made with glibc's own environment variables (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_ARENA_MAX``) is left as it is. Other C libraries (musl) are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt() parameters, from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # blocks from this size on are mapped, and unmapped when freed
ARENA_MAX = 2

_SETTINGS = (
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
)


def tune_allocator() -> list[str]:
    """Fix glibc's mmap threshold and limit its arenas (see the module doc); returns the
    settings made (empty when the C library is not glibc)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return []
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    made = []
    for variable, parameter, value in _SETTINGS:
        if variable in os.environ:
            continue
        if mallopt(parameter, value) == 1:
            made.append(f"{variable.rstrip('_')}={value}")
        else:
            log.debug("mallopt(%d, %d) was refused", parameter, value)
    return made
