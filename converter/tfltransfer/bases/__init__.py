"""Base model configurations: the frozen feature extractor, converted to ``bottleneck.tflite``."""

from tfltransfer.bases.base import Base
from tfltransfer.bases.mobilenetv2_base import MobileNetV2Base
from tfltransfer.bases.saved_model_base import SavedModelBase

__all__ = ["Base", "MobileNetV2Base", "SavedModelBase"]
