"""Ranking metrics for next-item prediction, computed from the rank of the one held-out target.

Everything starts from `target_ranks`: the 1-based position of the target in the score-sorted list,
with ties broken *against* the target (pessimistic). A model that gives every item the same score
therefore ranks each target last, never first; optimistic tie handling is a known way to inflate
published numbers, so it is not offered.

With one target per user, HR@k and Recall@k are the same number; both keys are reported so tables
from either vocabulary can be filled.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

__all__ = ["DEFAULT_KS", "exclude_candidates", "target_ranks", "ranking_metrics", "item_coverage"]

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)


def _as_array(values: torch.Tensor | np.ndarray) -> np.ndarray:
    # NumPy, not torch, does the counting: its reductions over bool matrices are several times faster.
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def exclude_candidates(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, targets: np.ndarray) -> None:
    """Set `scores[rows, cols]` to `-inf` in place, except where the column is that row's target.

    The target is always kept as a candidate: a user may well buy an item again, and dropping the
    target would make the row unrankable instead of merely hard.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    keep = cols != np.asarray(targets)[rows]
    scores[rows[keep], cols[keep]] = -np.inf


def target_ranks(
    scores: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    exclude_mask: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """1-based rank of each row's target among all columns, ties counted against the target.

    `scores` is `(n, n_items)`, `targets` holds one column index per row. The rank is
    `1 + #(items scoring higher) + #(other items scoring the same)`.

    `exclude_mask` (bool, `(n, n_items)`) marks items that are not candidates, e.g. items the user
    already bought: they are scored `-inf` before ranking. The target itself is always kept even
    when the mask marks it (see `exclude_candidates`). `scores` is not modified.
    """
    scores = _as_array(scores)
    targets = _as_array(targets).astype(np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"expected scores (n, n_items) and targets (n,), got {scores.shape} and {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= scores.shape[1]):
        raise ValueError(f"targets must be column indices in [0, {scores.shape[1]})")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: a NaN compares false with everything and cannot be ranked")
    if exclude_mask is not None:
        scores = scores.copy()
        exclude_candidates(scores, *np.nonzero(_as_array(exclude_mask)), targets)
    target_scores = scores[np.arange(targets.size), targets][:, None]
    # 1 + #higher + #(equal, other than the target) is exactly #(score >= target score): the
    # target counts itself once, which is the "1 +".
    return np.count_nonzero(scores >= target_scores, axis=1).astype(np.int64)


def ranking_metrics(ranks: np.ndarray | Iterable[int], ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """HR@k, Recall@k, NDCG@k and MRR@k averaged over targets, from 1-based ranks.

    For a single relevant item the ideal DCG is 1, so NDCG@k = 1 / log2(rank + 1) when the target
    is in the top k and 0 otherwise; MRR@k = 1 / rank under the same cut-off.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to average: the evaluation set is empty")
    if ranks.min() < 1:
        raise ValueError("ranks are 1-based: found a rank below 1")
    metrics: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        hr = float(hit.mean())
        metrics[f"hr@{k}"] = hr
        metrics[f"recall@{k}"] = hr
        metrics[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
        metrics[f"mrr@{k}"] = float(np.where(hit, 1.0 / ranks, 0.0).mean())
    return metrics


def item_coverage(recommended: np.ndarray, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one recommended list.

    `recommended` is `(n_users, k)` item ids (the top-k lists); `catalog_size` is the number of
    items that could have been recommended (padding and unknown codes excluded).
    """
    if catalog_size <= 0:
        raise ValueError("catalog_size must be positive")
    return float(np.unique(np.asarray(recommended)).size / catalog_size)
