"""The runtime model: a bundle's five TFLite models driven from Python.

``frame -> preprocess -> bottleneck model -> samples -> train_head + optimizer -> parameters ->
inference model -> predictions``; :class:`TransferLearningModel` wires these together.
"""

from .transfer_model import Prediction, TransferLearningModel

__all__ = ["Prediction", "TransferLearningModel"]
