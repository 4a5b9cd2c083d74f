"""Simple next-item baselines behind one small interface, `NextItemModel`.

Item codes follow the sequence convention: 0 is padding, 1 is an unknown item, real items are
`2 .. n_items - 1`. A model is fitted on users' sequences in CSR form (`offsets`, `items`: user `u`
owns `items[offsets[u]:offsets[u + 1]]`, oldest first) and scores a batch of histories against the
whole code space; the padding and unknown columns always score `-inf`.

Histories passed to `score` are either a list of 1-D integer arrays (one per user, oldest first) or a
2-D array/tensor whose zeros are padding (left or right). An empty history is valid.

Models save to a directory holding `model.json` (class, hyper-parameters) and `arrays.npz` (learned
arrays), loadable without pickle.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from shopformer.artifacts import read_header, write_header
from shopformer.data.codes import FIRST_CODE, PADDING_CODE
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import DataError, NotFittedError

__all__ = ["NextItemModel", "MostPopular", "ItemKNN", "MarkovChain", "last_items"]


Histories = SequenceArrays | Sequence[np.ndarray] | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class _HistoryBatch:
    """A batch of histories flattened: `items[rows == r]` is row `r`'s history, oldest first."""

    items: np.ndarray
    rows: np.ndarray
    size: int

    def last(self, n: int) -> np.ndarray:
        """The last `n` items of each row, right-aligned in a `(size, n)` matrix, 0-padded."""
        lengths = np.bincount(self.rows, minlength=self.size)
        ends = np.cumsum(lengths)
        # Distance from the end of the row: 0 for the most recent item.
        from_end = ends[self.rows] - 1 - np.arange(self.items.size)
        keep = from_end < n
        out = np.zeros((self.size, n), dtype=np.int64)
        out[self.rows[keep], n - 1 - from_end[keep]] = self.items[keep]
        return out


def _flatten_histories(histories: Histories) -> _HistoryBatch:
    if isinstance(histories, SequenceArrays):
        size = len(histories.lengths)
        rows = np.repeat(np.arange(size), histories.lengths)
        flat = np.asarray(histories.items, dtype=np.int64)
        keep = flat != PADDING_CODE
        return _HistoryBatch(items=flat[keep], rows=rows[keep], size=size)
    if isinstance(histories, torch.Tensor):
        histories = histories.detach().cpu().numpy()
    if isinstance(histories, np.ndarray) and histories.ndim == 2:
        size = histories.shape[0]
        rows = np.repeat(np.arange(size), histories.shape[1])
        flat = histories.reshape(-1).astype(np.int64)
    else:
        arrays = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
        size = len(arrays)
        rows = np.repeat(np.arange(size), [a.size for a in arrays])
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    keep = flat != PADDING_CODE
    return _HistoryBatch(items=flat[keep], rows=rows[keep], size=size)


def last_items(histories: Histories, n: int) -> np.ndarray:
    """The last `n` items of each history, right-aligned (left-padded with 0) in a `(b, n)` int64 array."""
    return _flatten_histories(histories).last(n)


def _check_sequences(offsets: np.ndarray, items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.asarray(offsets, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != items.size:
        raise DataError("offsets must start at 0 and end at len(items)", expected="CSR sequences")
    if np.any(np.diff(offsets) < 0):
        raise DataError("offsets must be non-decreasing", expected="CSR sequences")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise DataError(f"item codes must lie in [0, {n_items})", found=f"{items.min()}..{items.max()}")
    return offsets, items


def _popularity(items: np.ndarray, n_items: int) -> np.ndarray:
    """Occurrence counts of real items scaled to a maximum of 1 (padding and unknown get 0)."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    counts[:FIRST_CODE] = 0.0
    top = counts.max()
    return (counts / top if top > 0 else counts).astype(np.float32)


def _pairs_within(offsets: np.ndarray, items: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later) item pairs at most `max_gap` positions apart in the same user's sequence."""
    user_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    sources, targets = [], []
    for gap in range(1, max_gap + 1):
        same_user = user_of[:-gap] == user_of[gap:]
        earlier, later = items[:-gap][same_user], items[gap:][same_user]
        real = (earlier >= FIRST_CODE) & (later >= FIRST_CODE)
        sources.append(earlier[real])
        targets.append(later[real])
    return np.concatenate(sources), np.concatenate(targets)


def _count_pairs(src: np.ndarray, dst: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (src, dst) pairs with their counts, sorted by src then dst."""
    keys, counts = np.unique(src * n_items + dst, return_counts=True)
    return keys // n_items, keys % n_items, counts.astype(np.float64)


def _top_k_csr(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_items: int, top_k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each row's `top_k` largest values (ties: smaller column first) as CSR arrays."""
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    row_counts = np.bincount(rows, minlength=n_items)
    if top_k is not None:
        row_starts = np.repeat(np.cumsum(row_counts) - row_counts, row_counts)
        keep = np.arange(rows.size) - row_starts < top_k
        rows, cols, values = rows[keep], cols[keep], values[keep]
        row_counts = np.bincount(rows, minlength=n_items)
    indptr = np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int64)
    return indptr, cols.astype(np.int64), values.astype(np.float32)


def _gather_rows(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All stored entries of CSR rows `rows[i]` as (i, column, value) triplets, without a Python loop."""
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    batch_pos = np.repeat(np.arange(rows.size), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat = np.repeat(starts, lengths) + within
    return batch_pos, indices[flat], values[flat]


class NextItemModel(ABC):
    """Interface of every next-item model: fit on sequences, score histories, save and load.

    Hyper-parameters are the `__init__` arguments (kept as attributes of the same name); learned
    state lives in attributes ending in `_`, of which the arrays listed in `_STATE` are saved.
    A model is itself a scorer: `model(histories)` is `model.score(histories)`.
    """

    _STATE: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type[NextItemModel]]] = {}
    n_items_: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        NextItemModel._registry[cls.__name__] = cls

    @abstractmethod
    def fit(self, offsets: np.ndarray, items: np.ndarray, n_items: int) -> Self:
        """Learn from users' sequences (CSR) over the code space `0 .. n_items - 1`; returns self."""

    @abstractmethod
    def _score_batch(self, batch: _HistoryBatch) -> np.ndarray:
        """Raw float32 scores `(batch.size, n_items_)` for validated histories."""

    def score(self, histories: Histories) -> torch.Tensor:
        """Scores `(b, n_items)` (float32, higher is better) of every item code for each history."""
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
        batch = _flatten_histories(histories)
        if batch.items.size and (batch.items.min() < 0 or batch.items.max() >= self.n_items_):
            raise DataError(f"history item codes must lie in [0, {self.n_items_})",
                            found=f"{batch.items.min()}..{batch.items.max()}")
        scores = self._score_batch(batch)
        scores[:, :FIRST_CODE] = -np.inf
        return torch.from_numpy(scores)

    __call__ = score

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as passed to `__init__`."""
        parameters = inspect.signature(type(self).__init__).parameters.values()
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: getattr(self, p.name) for p in parameters if p.name != "self" and p.kind in plain}

    def save(self, path: str | Path) -> Path:
        """Write `model.json` and `arrays.npz` into directory `path` (created if needed)."""
        if not hasattr(self, "n_items_"):
            raise NotFittedError("only a fitted model can be saved")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_header(path / "model.json", "next_item_model", indent=2, **{"class": type(self).__name__},
                     params=self.get_params(), n_items=self.n_items_)
        np.savez(path / "arrays.npz", **{name: getattr(self, name) for name in self._STATE})
        return path

    @classmethod
    def load(cls, path: str | Path) -> NextItemModel:
        """Rebuild a saved model; called on a subclass, the saved class must match it."""
        path = Path(path)
        meta = read_header(path / "model.json", "next_item_model", what="saved next-item model")
        model_cls = NextItemModel._registry.get(meta["class"])
        if model_cls is None or not issubclass(model_cls, cls):
            raise DataError(f"the folder holds a {meta['class']}, not a {cls.__name__}", path=str(path))
        model = model_cls(**meta["params"])
        with np.load(path / "arrays.npz", allow_pickle=False) as arrays:
            for name in model_cls._STATE:
                setattr(model, name, arrays[name])
        model.n_items_ = int(meta["n_items"])
        return model


class MostPopular(NextItemModel):
    """Scores every item by how often it occurs in the training sequences, whatever the history."""

    _STATE = ("popularity_",)

    def __init__(self) -> None:
        pass

    def fit(self, offsets: np.ndarray, items: np.ndarray, n_items: int) -> Self:
        _, items = _check_sequences(offsets, items, n_items)
        self.popularity_ = _popularity(items, n_items)
        self.n_items_ = int(n_items)
        return self

    def _score_batch(self, batch: _HistoryBatch) -> np.ndarray:
        return np.tile(self.popularity_, (batch.size, 1))


class ItemKNN(NextItemModel):
    """Item-to-item neighbours from co-occurrence in users' sequences, scored from recent history.

    Two items co-occur when they are at most `window` positions apart in one user's sequence. The
    similarity is the cosine of their occurrence vectors, `c(a, b) / sqrt(n(a) n(b))`, so a hugely
    popular item is not everyone's neighbour; each item keeps its `neighbours` most similar items.
    A history scores item `j` as `sum_t decay**t * sim(h_t, j)` over its last `history_len` items
    (`t = 0` is the most recent), plus `popularity_weight * popularity(j)`, which orders the many
    items with no similarity by popularity instead of leaving them tied.
    """

    _STATE = ("indptr_", "indices_", "similarities_", "popularity_")

    def __init__(
        self,
        neighbours: int = 100,
        window: int = 3,
        history_len: int = 5,
        decay: float = 0.5,
        popularity_weight: float = 1e-4,
    ) -> None:
        self.neighbours = neighbours
        self.window = window
        self.history_len = history_len
        self.decay = decay
        self.popularity_weight = popularity_weight

    def fit(self, offsets: np.ndarray, items: np.ndarray, n_items: int) -> Self:
        offsets, items = _check_sequences(offsets, items, n_items)
        earlier, later = _pairs_within(offsets, items, self.window)
        distinct = earlier != later
        # Co-occurrence is symmetric: count each pair in both directions.
        src = np.concatenate([earlier[distinct], later[distinct]])
        dst = np.concatenate([later[distinct], earlier[distinct]])
        rows, cols, counts = _count_pairs(src, dst, n_items)
        occurrences = np.bincount(items, minlength=n_items).astype(np.float64)
        cosine = counts / np.sqrt(occurrences[rows] * occurrences[cols])
        self.indptr_, self.indices_, self.similarities_ = _top_k_csr(rows, cols, cosine, n_items, self.neighbours)
        self.popularity_ = _popularity(items, n_items)
        self.n_items_ = int(n_items)
        return self

    def _score_batch(self, batch: _HistoryBatch) -> np.ndarray:
        scores = np.tile(self.popularity_weight * self.popularity_, (batch.size, 1))
        recent = batch.last(self.history_len)
        for position in range(self.history_len):
            weight = np.float32(self.decay ** (self.history_len - 1 - position))
            rows, cols, sims = _gather_rows(self.indptr_, self.indices_, self.similarities_, recent[:, position])
            # Within one position each (row, column) pair occurs once, so plain `+=` is exact.
            scores[rows, cols] += weight * sims
        return scores


class MarkovChain(NextItemModel):
    """First-order transitions: scores `P(next = j | last item)` from consecutive pairs in sequences.

    The probabilities are counted over all successors of an item, then the `max_successors` most
    likely are kept. `backoff_weight * popularity(j)` is added to every score: it orders the items a
    transition row does not cover, and it is the whole score when the last item was never followed
    by anything in training (or the history is empty or ends with an unknown item).
    """

    _STATE = ("indptr_", "indices_", "probabilities_", "popularity_")

    def __init__(self, max_successors: int | None = 200, backoff_weight: float = 1e-3) -> None:
        self.max_successors = max_successors
        self.backoff_weight = backoff_weight

    def fit(self, offsets: np.ndarray, items: np.ndarray, n_items: int) -> Self:
        offsets, items = _check_sequences(offsets, items, n_items)
        earlier, later = _pairs_within(offsets, items, max_gap=1)
        rows, cols, counts = _count_pairs(earlier, later, n_items)
        out_degree = np.bincount(rows, weights=counts, minlength=n_items)
        probabilities = counts / out_degree[rows]
        self.indptr_, self.indices_, self.probabilities_ = _top_k_csr(
            rows, cols, probabilities, n_items, self.max_successors
        )
        self.popularity_ = _popularity(items, n_items)
        self.n_items_ = int(n_items)
        return self

    def _score_batch(self, batch: _HistoryBatch) -> np.ndarray:
        scores = np.tile(self.backoff_weight * self.popularity_, (batch.size, 1))
        last = batch.last(1)[:, 0]
        rows, cols, probabilities = _gather_rows(self.indptr_, self.indices_, self.probabilities_, last)
        scores[rows, cols] += probabilities
        return scores
