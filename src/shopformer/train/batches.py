"""From per-user CSR sequences to left-padded training windows and evaluation histories.

A user `u` owns `items[offsets[u]:offsets[u + 1]]`. Training uses the last `window` events of
every user and, for users longer than that, earlier windows too, laid out so that every event is
predicted exactly once per epoch. Batches are padded only to their own longest window (positions
count back from the newest event, so trimming changes nothing); windows of similar length are
batched together so short-sequence datasets do not pay for `max_len` padding on every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Batch", "SequenceArrays", "evaluation_cases", "gather_windows", "pooled_batches", "training_windows", "window_batches"]


@dataclass(frozen=True)
class SequenceArrays:
    """Per-user event sequences in CSR layout (optional arrays aligned with `items`).

    Pass `timestamps` only when they are real seconds: positions carry no gap information.
    """

    offsets: np.ndarray
    items: np.ndarray
    event_types: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.items)
        if self.offsets[0] != 0 or self.offsets[-1] != n or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, end at len(items) and never decrease")
        for name in ("event_types", "timestamps"):
            array = getattr(self, name)
            if array is not None and len(array) != n:
                raise ValueError(f"{name} has {len(array)} entries, items has {n}")

    @classmethod
    def from_lists(cls, sequences: list[list[int]]) -> SequenceArrays:
        """Item-code lists (one per user) as CSR arrays, without event types or times."""
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.fromiter((i for s in sequences for i in s), dtype=np.int32, count=int(lengths.sum()))
        return cls(offsets, items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def windows(self, starts: np.ndarray, lengths: np.ndarray) -> SequenceArrays:
        """New sequences whose row r is events `starts[r] : starts[r] + lengths[r]` of the flat arrays."""
        starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Flat position of every kept event, computed without a loop over rows.
        positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])

        def take(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[positions]

        return SequenceArrays(offsets, self.items[positions], take(self.event_types), take(self.timestamps))

    def rows(self, rows: np.ndarray) -> SequenceArrays:
        """The sequences of `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.windows(self.offsets[rows], self.lengths[rows])

    def drop_last(self, n: int = 1) -> SequenceArrays:
        """The same users with their last `n` events cut off (users with fewer keep none)."""
        return self.windows(self.offsets[:-1], np.maximum(self.lengths - n, 0))

    def keep_last(self, n: int) -> SequenceArrays:
        """The same users with only their last `n` events."""
        kept = np.minimum(self.lengths, n)
        return self.windows(self.offsets[1:] - kept, kept)

    def last_item_cases(self) -> tuple[SequenceArrays, np.ndarray]:
        """Users with two or more events: (their events but the last, their last item codes)."""
        rows = np.flatnonzero(self.lengths >= 2)
        return self.rows(rows).drop_last(1), self.items[self.offsets[1:][rows] - 1].astype(np.int64)

    def item_counts(self, n_items: int) -> np.ndarray:
        """Occurrences of every item code (n_items,)."""
        return np.bincount(self.items, minlength=n_items)[:n_items]


@dataclass(frozen=True)
class Batch:
    """Left-padded (batch, length) tensors; `event_types`/`timestamps` are None when absent."""

    items: Tensor
    event_types: Tensor | None
    timestamps: Tensor | None


def training_windows(sequences: SequenceArrays, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) into the flat arrays: per user the last `window` events, then earlier ones.

    Consecutive windows of one user overlap by one event, so each event after a user's first is a
    target exactly once under next-item training. Users with fewer than two events are skipped.
    """
    starts, ends = [], []
    begin, finish = sequences.offsets[:-1], sequences.offsets[1:]
    usable = finish - begin >= 2
    end, first = finish[usable].copy(), begin[usable]
    while len(end):
        start = np.maximum(end - window, first)
        starts.append(start)
        ends.append(end.copy())
        more = start > first
        end, first = (start + 1)[more], first[more]
    if not starts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(starts), np.concatenate(ends)


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


def pooled_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, sort_pool: int = 50) -> Iterator[np.ndarray]:
    """Shuffled batches of row indices; rows of similar length share a batch.

    Rows are shuffled, then sorted by length within pools of `sort_pool` batches, cut into
    batches, and the batches shuffled again: padding shrinks while batches stay random.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * sort_pool
    for i in range(0, len(order), pool):
        chunk = order[i : i + pool]
        order[i : i + pool] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for b in rng.permutation(len(batches)):
        yield batches[b]


def window_batches(
    sequences: SequenceArrays,
    starts: np.ndarray,
    ends: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    sort_pool: int = 50,
) -> Iterator[Batch]:
    """Shuffled batches of windows (`pooled_batches`): windows of similar length share a batch."""
    for rows in pooled_batches(ends - starts, batch_size, rng, sort_pool):
        yield gather_windows(sequences, starts[rows], ends[rows])


def evaluation_cases(sequences: SequenceArrays, history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users with at least two events: (history starts, history ends, target codes).

    The target is each user's last item; the history is up to `history` events before it.
    """
    begin, finish = sequences.offsets[:-1], sequences.offsets[1:]
    usable = finish - begin >= 2
    ends = finish[usable] - 1
    starts = np.maximum(ends - history, begin[usable])
    return starts, ends, sequences.items[ends].astype(np.int64)


def evaluation_batches(
    sequences: SequenceArrays, starts: np.ndarray, ends: np.ndarray, batch_size: int
) -> Iterator[tuple[slice, Batch]]:
    """Histories in order, in batches; yields the slice of cases each batch covers."""
    for i in range(0, len(starts), batch_size):
        part = slice(i, i + batch_size)
        yield part, gather_windows(sequences, starts[part], ends[part])
