"""The reliability suites' fixtures (defined beside their helpers), registered for every test."""

from tests.reliability.faults_support import fault_broker, fault_bundle, fault_frames
from tests.reliability.input_support import daemons, input_bundle, input_frames

__all__ = [
    "daemons",
    "fault_broker",
    "fault_bundle",
    "fault_frames",
    "input_bundle",
    "input_frames",
]
