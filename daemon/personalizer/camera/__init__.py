"""Where frames come from: cameras behind one small interface, and the newest-frame holder."""

from .latest import Frame, LatestFrame
from .selection import AutoSource, create_frame_source
from .source import CameraError, FrameSource

__all__ = [
    "AutoSource",
    "CameraError",
    "Frame",
    "FrameSource",
    "LatestFrame",
    "create_frame_source",
]
