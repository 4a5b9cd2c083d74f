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

from shopformer.evaluate.metrics import (
    DEFAULT_KS,
    exclude_candidates,
    item_coverage,
    ranking_metrics,
    target_ranks,
)
from shopformer.data.codes import FIRST_CODE

__all__ = ["evaluate_next_item", "leave_one_out_targets"]

Scorer = Callable[[Any], torch.Tensor]
HistoriesInput = Sequence[np.ndarray] | tuple[np.ndarray, np.ndarray]


def _as_csr(histories: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, items) from a CSR tuple, an object with `.offsets`/`.items`, or a list of arrays."""
    if hasattr(histories, "offsets") and hasattr(histories, "items") and not callable(histories.items):
        histories = (histories.offsets, histories.items)
    if isinstance(histories, tuple):
        offsets, items = (np.asarray(part, dtype=np.int64) for part in histories)
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != items.size:
            raise ValueError("CSR histories need offsets starting at 0 and ending at len(items)")
        return offsets, items
    arrays = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
    offsets = np.concatenate([[0], np.cumsum([a.size for a in arrays], dtype=np.int64)])
    items = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return offsets, items


def _float_copy(scores: Any) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach()
        scores = (scores if scores.dtype in (torch.float32, torch.float64) else scores.float()).cpu().numpy()
    scores = np.array(scores, copy=True)
    return scores if np.issubdtype(scores.dtype, np.floating) else scores.astype(np.float64)


def _candidate_scores(
    scores: Any, offsets: np.ndarray, items: np.ndarray, start: int, targets: np.ndarray, filter_seen: bool
) -> np.ndarray:
    """A copy of the batch's scores with non-candidates at `-inf`: padding, unknown, and (when
    `filter_seen`) the users' history items other than their target."""
    stop = start + targets.size
    scores = _float_copy(scores)
    scores[:, :FIRST_CODE] = -np.inf
    if filter_seen:
        rows = np.repeat(np.arange(targets.size), np.diff(offsets[start : stop + 1]))
        exclude_candidates(scores, rows, items[offsets[start] : offsets[stop]], targets)
    return scores


def _batch_histories(offsets: np.ndarray, items: np.ndarray, start: int, stop: int, max_len: int | None) -> Any:
    batch = [items[offsets[u] : offsets[u + 1]] for u in range(start, stop)]
    return batch if max_len is None else last_items(batch, max_len)


def evaluate_next_item(
    scorer: Scorer,
    histories: HistoriesInput,
    targets: np.ndarray,
    n_items: int,
    *,
    batch_size: int = 1024,
    filter_seen: bool = False,
    ks: Sequence[int] = DEFAULT_KS,
    max_len: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Rank each user's target among all `n_items` codes and average HR/Recall/NDCG/MRR@k.

    `histories` is a list of 1-D item-code arrays (oldest first), an `(offsets, items)` CSR tuple
    (a tuple is always read as CSR), or any object with `offsets` and `items` arrays. `scorer(batch)` returns `(b, n_items)` scores
    for a batch given as a list of arrays, or, when `max_len` is set, as a `(b, max_len)` int64
    array holding the last `max_len` items right-aligned and left-padded with 0.

    With `filter_seen`, items in the user's history are not candidates, except the target itself
    (a repeat purchase stays rankable). Returns the metrics, `coverage@k` (share of real items that
    appear in some top-k list), `n_users`, `n_items`, `filter_seen` and `ties: "pessimistic"`.
    """
    targets = np.asarray(targets, dtype=np.int64)
    offsets, items = _as_csr(histories)
    if offsets.size != targets.size + 1:
        raise ValueError(f"{offsets.size - 1} histories but {targets.size} targets")
    if targets.size and (targets.min() < FIRST_CODE or targets.max() >= n_items):
        raise ValueError(f"targets must be real item codes in [{FIRST_CODE}, {n_items})")
    top_k = min(max(ks), n_items - FIRST_CODE)
    ranks, top_items = [], []
    starts = range(0, targets.size, batch_size)
    for start in tqdm(starts, desc="ranking", unit="batch", disable=not progress):
        stop = min(start + batch_size, targets.size)
        with torch.no_grad():
            scores = scorer(_batch_histories(offsets, items, start, stop, max_len))
        if tuple(scores.shape) != (stop - start, n_items):
            raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected {(stop - start, n_items)}")
        candidates = _candidate_scores(scores, offsets, items, start, targets[start:stop], filter_seen)
        ranks.append(target_ranks(candidates, targets[start:stop]))
        # Coverage is measured on the same candidates the targets were ranked among.
        top_items.append(torch.topk(torch.from_numpy(candidates), top_k, dim=1).indices.numpy())
    all_ranks = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    result: dict[str, Any] = ranking_metrics(all_ranks, ks)
    recommended = np.concatenate(top_items) if top_items else np.zeros((0, top_k), dtype=np.int64)
    for k in ks:
        result[f"coverage@{k}"] = item_coverage(recommended[:, :k], n_items - FIRST_CODE)
    result.update(n_users=int(targets.size), n_items=int(n_items), filter_seen=filter_seen, ties="pessimistic")
    return result


def leave_one_out_targets(
    offsets: np.ndarray, items: np.ndarray, which: Literal["valid", "test"]
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Histories and targets of the leave-one-out protocol from users' sequences (CSR).

    `"test"`: the target is each user's last item and the history everything before it.
    `"valid"`: the target is the second-to-last item and the history everything before that, so the
    valid histories are exactly the training part of the split.
    A user is skipped when the history would be empty (fewer than 2 items for test, 3 for valid) or
    when the target is padding/unknown, since such a target cannot be ranked. Returns
    `((offsets, items), targets)` for the kept users, in their original order.
    """
    if which not in ("valid", "test"):
        raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
    offsets = np.asarray(offsets, dtype=np.int64)
    items = np.asarray(items)
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
    return (history_offsets, items[positions]), items[target_positions[keep]].astype(np.int64)
