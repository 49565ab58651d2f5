"""Errors of the runtime model.

Every error a caller can provoke derives from :class:`PersonalizerError`, so the daemon can catch
one type at its edge. Each message names the file, field or value at fault and says what to do.
Errors about a bad argument also derive from :class:`ValueError`, and "file not found" errors from
:class:`FileNotFoundError`, so generic handlers keep working.
"""

from __future__ import annotations


class PersonalizerError(Exception):
    """Base class of every error raised by the personalizer runtime."""


# --- bundle -----------------------------------------------------------------------------------


class BundleError(PersonalizerError):
    """The bundle is missing, unreadable, or its manifest does not describe its models."""


class BundleNotFoundError(BundleError, FileNotFoundError):
    """The bundle path (folder or ``.zip``) does not exist."""


class BundleHashMismatch(BundleError):
    """A file of the bundle is missing, or its size or sha256 differs from the manifest."""


class UnsupportedBundleVersion(BundleError):
    """The manifest's ``format`` or ``format_version`` is not one this runtime knows."""


class FlexRequiredError(BundleError):
    """The bundle needs select TensorFlow ops (Flex), which the chosen runtime does not carry."""


# --- interpreter --------------------------------------------------------------------------------


class RuntimeNotAvailable(PersonalizerError):
    """No TFLite interpreter package is installed, or the one asked for is not."""


class TensorShapeError(PersonalizerError, ValueError):
    """An array does not fit the interpreter tensor it was meant for (checked before writing)."""


# --- caller input -------------------------------------------------------------------------------


class UnknownClassError(PersonalizerError, ValueError):
    """A class name that is not one of the model's classes."""


class ClassListError(PersonalizerError, ValueError):
    """The class names given for a model do not fit its bundle (count, duplicates, empty)."""


class ImageFormatError(PersonalizerError, ValueError):
    """An image (or bottleneck) with a shape, dtype or value range the model cannot take."""


class NoSamplesError(PersonalizerError):
    """An operation that needs samples (training, imprinting) was asked for with none stored."""


class SamplesChanged(PersonalizerError):
    """Samples a snapshot refers to were removed or replaced while it was read (the work on it
    is redone on a new snapshot)."""


class NotImprintableError(PersonalizerError):
    """Imprinting was asked for on a head that is not a single dense softmax layer."""


# --- state files --------------------------------------------------------------------------------


class StateFileError(PersonalizerError):
    """A state file is truncated, corrupt, or not a personalizer state file."""


class DamagedSampleError(StateFileError):
    """A stored sample whose bytes are damaged (checksum or size); it is never used."""

    def __init__(self, path: object, sample_id: int, why: str) -> None:
        super().__init__(f"{path}: sample {sample_id} is damaged ({why})")
        self.sample_id = sample_id
        self.why = why


class StateFileNotFound(StateFileError, FileNotFoundError):
    """There is no state file at the given path."""


class StateWriteError(PersonalizerError, OSError):
    """The state could not be written (disk full, I/O error, read-only); nothing was changed."""


class StateBundleMismatch(StateFileError):
    """A state file was written for another bundle (other ``bundle_id``) or other classes."""
