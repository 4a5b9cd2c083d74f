"""Length-pooled batching shared by next-item training and task heads."""

from __future__ import annotations

import numpy as np

from shopformer.train.batches import pooled_batches


def test_pooled_batches_cover_every_row_once_with_similar_lengths_together():
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    batches = list(pooled_batches(lengths, 64, np.random.default_rng(1), sort_pool=20))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 2  # sorted within pools: far less spread than random batches
