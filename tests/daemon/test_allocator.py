"""glibc's allocator as the daemon sets it: large freed blocks go back to the system."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)

# 300 blocks of 200 KiB (a stored 7x7 sample is 122.5 KiB, a float32 one 245 KiB) made and
# freed but the last, after one freed 1 MiB block raised glibc's dynamic mmap threshold.
CHURN = """
import sys
from personalizer.allocator import tune_allocator
made = tune_allocator() if sys.argv[1] == "tuned" else []
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
warm = bytearray(1 << 20)
del warm
before = rss()
blocks = [bytearray(200 * 1024) for _ in range(300)]
keep = blocks[-1]
del blocks
print((rss() - before) / 2**20, ",".join(made))
"""


def _kept_mib(mode: str, env: dict | None = None) -> tuple[float, str]:
    out = subprocess.run(
        [sys.executable, "-c", CHURN, mode],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    ).stdout.split()  # fmt: skip
    return float(out[0]), out[1] if len(out) > 1 else ""


def test_freed_sample_sized_blocks_leave_the_process_once_tuned() -> None:
    plain, _ = _kept_mib("plain")
    tuned, made = _kept_mib("tuned")
    assert plain > 30, f"glibc kept only {plain:.1f} MiB: the test no longer shows the problem"
    assert tuned < 5, f"{tuned:.1f} MiB stayed in the process after tuning"
    assert made == "MALLOC_MMAP_THRESHOLD=131072,MALLOC_ARENA_MAX=2"


def test_the_users_own_malloc_settings_are_kept() -> None:
    _, made = _kept_mib("tuned", {"MALLOC_ARENA_MAX": "4"})
    assert made == "MALLOC_MMAP_THRESHOLD=131072"
