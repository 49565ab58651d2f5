"""The seed's batching rule for one training epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_batches(
    num_samples: int, max_batch: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield the sample indices of each batch of one epoch, as the seed's Java library did.

    The samples are shuffled; every batch has ``min(max_batch, num_samples)`` samples; batches
    are consecutive slices of the shuffled order, and when the last slice would be short it is
    taken as the final full-size window instead, overlapping the batch before it. So the batch
    size never changes within a run (no re-allocation) and every sample is seen at least once.
    """
    if num_samples <= 0:
        return
    batch = min(max_batch, num_samples)
    order = rng.permutation(num_samples)
    for start in range(0, num_samples, batch):
        end = start + batch
        yield order[num_samples - batch :] if end >= num_samples else order[start:end]
