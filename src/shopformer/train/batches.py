"""From per-user CSR sequences to left-padded training windows and evaluation histories.

A user `u` owns `items[offsets[u]:offsets[u + 1]]`. Training uses the last `window` events of
every user and, for users longer than that, earlier windows too, laid out so that every event is
predicted exactly once per epoch. Batches are padded only to their own longest window (positions
count back from the newest event, so trimming changes nothing); windows of similar length are
batched together so short-sequence datasets do not pay for `max_len` padding on every row.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shopformer.data.codes import FIRST_CODE
from shopformer.data.sequences import SequenceArrays
from shopformer.models.inputs import Batch, gather_windows

__all__ = ["evaluation_cases", "pooled_batches", "training_windows", "window_batches"]


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
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[Batch, bool]]:
    """Shuffled batches of windows (`pooled_batches`): windows of similar length share a batch.

    Yields (batch, own). With `world_size` ranks each rank gets its share of every global batch:
    every `world_size`-th window from its `rank` on, so the shares of one `rng` state make up the
    very batches one process would train on. A global batch with fewer windows than ranks leaves
    some ranks none: they get its first window with `own` False, to weigh 0, since every rank
    has to take part in every step.
    """
    for rows in pooled_batches(ends - starts, batch_size, rng, sort_pool):
        mine = rows[rank::world_size]
        own = len(mine) > 0
        mine = mine if own else rows[:1]
        yield gather_windows(sequences, starts[mine], ends[mine]), own


def evaluation_cases(sequences: SequenceArrays, history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users with at least two events whose last item is a real one: (history starts, history ends,
    target codes). The target is each user's last item; the history is up to `history` events before it.
    """
    begin, finish = sequences.offsets[:-1], sequences.offsets[1:]
    usable = finish - begin >= 2
    usable[usable] = sequences.items[finish[usable] - 1] >= FIRST_CODE  # an unknown item cannot be ranked
    ends = finish[usable] - 1
    starts = np.maximum(ends - history, begin[usable])
    return starts, ends, sequences.items[ends].astype(np.int64)
