"""The short soak (`make soak` runs the long one): a minute of the real daemon with samples,
training on and off and broker restarts, within the targets."""

from __future__ import annotations

import os

from tests.support.soak import run_soak

SECONDS = float(os.environ.get("SOAK_TEST_SECONDS", "60"))


def test_a_minute_of_soak_keeps_memory_fds_and_samples() -> None:
    report = run_soak(SECONDS)
    print(report.summary())
    assert report.broker_restarts >= 2 and report.reconnects >= report.broker_restarts, report
    assert report.samples_acknowledged >= 10, report.summary()
    assert report.problems() == [], report.summary()
