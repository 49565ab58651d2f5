"""personalizer: on-device model personalization for ARM/Coral boards.

The runtime model (:class:`TransferLearningModel`) runs a bundle written by
``tflite-transfer-convert`` on ``tflite-runtime``, ``ai-edge-litert`` or ``tensorflow.lite``.
"""

from .errors import (
    BundleError,
    BundleHashMismatch,
    BundleNotFoundError,
    ClassListError,
    FlexRequiredError,
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    PersonalizerError,
    RuntimeNotAvailable,
    StateBundleMismatch,
    StateFileError,
    StateFileNotFound,
    TensorShapeError,
    UnknownClassError,
    UnsupportedBundleVersion,
)
from .model import Prediction, TransferLearningModel

__version__ = "1.0.0"

__all__ = [
    "BundleError",
    "BundleHashMismatch",
    "BundleNotFoundError",
    "ClassListError",
    "FlexRequiredError",
    "ImageFormatError",
    "NoSamplesError",
    "NotImprintableError",
    "PersonalizerError",
    "Prediction",
    "RuntimeNotAvailable",
    "StateBundleMismatch",
    "StateFileError",
    "StateFileNotFound",
    "TensorShapeError",
    "TransferLearningModel",
    "UnknownClassError",
    "UnsupportedBundleVersion",
    "__version__",
]
