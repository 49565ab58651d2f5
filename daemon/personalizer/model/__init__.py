"""The runtime model: a bundle's five TFLite models driven from Python.

``frame -> preprocess -> bottleneck model -> samples -> train_head + optimizer -> parameters ->
inference model -> predictions``; :class:`TransferLearningModel` wires these together.
"""

from .classifier import Classification, Prediction
from .transfer_model import TransferLearningModel

__all__ = ["Classification", "Prediction", "TransferLearningModel"]
