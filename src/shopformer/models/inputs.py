"""From CSR sequences to the left-padded tensors a model reads.

Windows are padded only to the longest window of their batch: positions count back from the newest
event, so trimming the padding changes nothing the model computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from shopformer.data.sequences import SequenceArrays

__all__ = ["Batch", "gather_windows"]


@dataclass(frozen=True)
class Batch:
    """Left-padded (batch, length) tensors; `event_types`/`timestamps` are None when absent."""

    items: Tensor
    event_types: Tensor | None
    timestamps: Tensor | None


def gather_windows(sequences: SequenceArrays, starts: np.ndarray, ends: np.ndarray) -> Batch:
    """Events `starts[r]:ends[r]` of every row r, left-padded to the longest window of the batch."""
    length = int((ends - starts).max())
    index = ends[:, None] - length + np.arange(length)
    present = index >= starts[:, None]
    index = np.where(present, index, 0)

    def take(array: np.ndarray | None) -> Tensor | None:
        if array is None:
            return None
        return torch.from_numpy(np.where(present, array[index], 0).astype(np.int64))

    return Batch(take(sequences.items), take(sequences.event_types), take(sequences.timestamps))
