"""Errors the converter reports to its user. Each message says what was wrong and what to do."""


class ConverterError(Exception):
    """Base class of every error the converter reports to its user."""


class BaseModelError(ConverterError):
    """The base model cannot be loaded or converted."""


class WeightsUnavailableError(BaseModelError):
    """Pre-trained weights cannot be had (no network, no cache)."""


class HeadError(ConverterError):
    """The head does not fit the base or the number of classes, or cannot be loaded."""


class OutputDirError(ConverterError):
    """The output directory cannot be written safely."""


class QuantizationError(ConverterError):
    """Quantization or Edge TPU compilation cannot be done as asked."""


class VerificationError(ConverterError):
    """The written bundle did not reproduce TensorFlow's numbers."""
