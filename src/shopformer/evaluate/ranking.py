"""Full-ranking next-item evaluation: every user's target is ranked against every item.

Scores are produced and ranked one batch of users at a time, so memory stays at
`batch_size x n_items` whatever the number of users. The padding (0) and unknown (1) item codes are
never candidates. Ties are broken against the target (see `metrics.target_ranks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from shopformer.data.codes import FIRST_CODE
from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate.metrics import (
    DEFAULT_KS,
    exclude_candidates,
    item_coverage,
    ranking_metrics,
    target_ranks,
)

__all__ = ["evaluate_next_item", "history_cells", "leave_one_out_targets", "top_k_items"]

Scorer = Callable[[SequenceArrays], "torch.Tensor | np.ndarray"]


def _float_copy(scores: Any) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach()
        scores = (scores if scores.dtype in (torch.float32, torch.float64) else scores.float()).cpu().numpy()
    scores = np.array(scores, copy=True)
    return scores if np.issubdtype(scores.dtype, np.floating) else scores.astype(np.float64)


def history_cells(histories: SequenceArrays) -> tuple[np.ndarray, np.ndarray]:
    """(row, item code) of every event of `histories`: the cells `filter_seen` takes out."""
    return np.repeat(np.arange(len(histories.lengths)), histories.lengths), histories.items


def top_k_items(
    scores: np.ndarray, k: int, *, exclude: tuple[np.ndarray, np.ndarray] | None = None, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and scores `(n, k)` of each row's `k` best items, best first: the one top-k path of
    `recommend`, the service and the evaluation's coverage.

    Modifies `scores` in place: the `exclude` cells `(rows, codes)` (e.g. `history_cells`, for
    `filter_seen`) and the items `allowed` (an `(n_items,)` or `(n, n_items)` bool mask) leaves out
    are set to `-inf`. Where fewer than `k` candidates are left, the extra entries score `-inf`.
    """
    if allowed is not None:
        if allowed.ndim == 1:
            scores[:, ~allowed] = -np.inf
        else:
            scores[~allowed] = -np.inf
    if exclude is not None:
        scores[exclude[0], exclude[1]] = -np.inf
    top_scores, top_codes = torch.topk(torch.from_numpy(scores), k, dim=1)
    return top_codes.numpy(), top_scores.numpy()


def _candidate_scores(scores: Any, histories: SequenceArrays, targets: np.ndarray, filter_seen: bool) -> np.ndarray:
    """A copy of the batch's scores with non-candidates at `-inf`: padding, unknown, and (when
    `filter_seen`) the users' history items other than their target."""
    scores = _float_copy(scores)
    scores[:, :FIRST_CODE] = -np.inf
    if filter_seen:
        exclude_candidates(scores, *history_cells(histories), targets)
    return scores


def evaluate_next_item(
    scorer: Scorer,
    histories: SequenceArrays,
    targets: np.ndarray,
    n_items: int,
    *,
    batch_size: int = 1024,
    filter_seen: bool = False,
    ks: Sequence[int] = DEFAULT_KS,
    coverage: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Rank each user's target among all `n_items` codes and average HR/Recall/NDCG/MRR@k.

    The one full-ranking path: training's early stopping, `Shopformer.evaluate` and the benchmark
    all call it. `scorer(batch)` returns `(b, n_items)` scores for `histories.rows(...)` of one
    batch (in order), so a model keeps whatever the histories carry: event types, timestamps.

    With `filter_seen`, items in the user's history are not candidates, except the target itself
    (a repeat purchase stays rankable). Returns the metrics, with `coverage` also `coverage@k`
    (share of real items that appear in some top-k list), `n_users`, `n_items`, `filter_seen` and
    `ties: "pessimistic"`.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories.lengths) != targets.size:
        raise ValueError(f"{len(histories.lengths)} histories but {targets.size} targets")
    if targets.size and (targets.min() < FIRST_CODE or targets.max() >= n_items):
        raise ValueError(f"targets must be real item codes in [{FIRST_CODE}, {n_items})")
    top_k = min(max(ks), n_items - FIRST_CODE)
    ranks, top_items = [], []
    starts = range(0, targets.size, batch_size)
    for start in tqdm(starts, desc="ranking", unit="batch", disable=not progress):
        batch = histories.rows(np.arange(start, min(start + batch_size, targets.size)))
        with torch.no_grad():
            scores = scorer(batch)
        if tuple(scores.shape) != (len(batch.lengths), n_items):
            raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected {(len(batch.lengths), n_items)}")
        part = targets[start : start + batch_size]
        candidates = _candidate_scores(scores, batch, part, filter_seen)
        ranks.append(target_ranks(candidates, part))
        if coverage:  # measured on the same candidates the targets were ranked among
            top_items.append(top_k_items(candidates, top_k)[0])
    all_ranks = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    result: dict[str, Any] = ranking_metrics(all_ranks, ks)
    if coverage:
        recommended = np.concatenate(top_items) if top_items else np.zeros((0, top_k), dtype=np.int64)
        for k in ks:
            result[f"coverage@{k}"] = item_coverage(recommended[:, :k], n_items - FIRST_CODE)
    result.update(n_users=int(targets.size), n_items=int(n_items), filter_seen=filter_seen, ties="pessimistic")
    return result


def leave_one_out_targets(
    sequences: SequenceArrays, which: Literal["valid", "test"]
) -> tuple[SequenceArrays, np.ndarray]:
    """Histories and targets of the leave-one-out protocol from users' sequences (CSR).

    `"test"`: the target is each user's last item and the history everything before it.
    `"valid"`: the target is the second-to-last item and the history everything before that, so the
    valid histories are exactly the training part of the split.
    A user is skipped when the history would be empty (fewer than 2 items for test, 3 for valid) or
    when the target is padding/unknown, since such a target cannot be ranked. Returns
    `(histories, targets)` for the kept users, in their original order (item codes only).
    """
    if which not in ("valid", "test"):
        raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
    offsets, items = sequences.offsets, sequences.items
    held_out = 1 if which == "test" else 2  # items cut from the end of each sequence
    lengths = np.diff(offsets)
    history_lengths = lengths - held_out
    keep = history_lengths >= 1
    target_positions = offsets[1:] - held_out
    keep[keep] &= items[target_positions[keep]] >= FIRST_CODE
    kept_starts, kept_lengths = offsets[:-1][keep], history_lengths[keep]
    history_offsets = np.concatenate([[0], np.cumsum(kept_lengths)]).astype(np.int64)
    # Position of every kept history item in `items`, built without a loop over users.
    within = np.arange(history_offsets[-1]) - np.repeat(history_offsets[:-1], kept_lengths)
    positions = np.repeat(kept_starts, kept_lengths) + within
    return SequenceArrays(history_offsets, items[positions]), items[target_positions[keep]].astype(np.int64)
