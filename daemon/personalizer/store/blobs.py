"""How arrays are stored in the state database: raw little-endian bytes and a CRC."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DamagedSampleError

SAMPLE_DTYPE = "float16"


def to_blob(array: np.ndarray, dtype: str) -> bytes:
    """``array`` as little-endian bytes of ``dtype``."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def crc(*parts: bytes | None) -> int:
    """The CRC-32 of ``parts`` in order (None counts as empty)."""
    value = 0
    for part in parts:
        value = zlib.crc32(part or b"", value)
    return value


def bottleneck_array(blob: bytes, shape: Sequence[int]) -> np.ndarray:
    """A stored bottleneck as a read-only array over ``blob`` (no copy); ValueError when its
    size does not fit ``shape``."""
    array = np.frombuffer(blob, dtype=np.dtype(SAMPLE_DTYPE).newbyteorder("<"))
    return array.reshape(tuple(shape))


def checked_bottleneck(
    path: Path,
    sample_id: int,
    blob: bytes,
    image: bytes | None,
    stored_crc: int,
    shape: Sequence[int],
) -> np.ndarray:
    """Sample ``sample_id``'s bottleneck, its CRC and shape checked; :class:`DamagedSampleError`
    saying which and why otherwise."""
    if crc(blob, image) != stored_crc:
        raise DamagedSampleError(path, sample_id, "its checksum does not match")
    try:
        return bottleneck_array(blob, shape)
    except ValueError:
        raise DamagedSampleError(path, sample_id, f"it is not a {list(shape)} bottleneck") from None
