"""A synthetic shop event log of any size, generated (and written as Parquet parts) chunk by chunk.

The distribution follows what real shop logs show: Zipf-like item popularity (ids shuffled, so an id
says nothing about popularity), lognormal user activity, ~10% reloads of the user's previous item,
gaps of ~90 s within a session and ~2 days between sessions, and a view-heavy event-type mix over a
90-day span. Users are dealt out in blocks of about `chunk_events` events; each block is one chunk,
ordered by time as a shop exports it (its users interleaved). Only the per-user event counts (8
bytes a user) are held for the whole log, so 100M events never sit in memory at once.

The same (events, users, items, seed, chunk_events) always gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.errors import ConfigError

__all__ = ["EVENT_SHARES", "EVENT_TYPES", "SyntheticEvents", "write_synthetic_events"]

EVENT_TYPES = ("view", "click", "cart", "favourite", "purchase")
EVENT_SHARES = (0.70, 0.15, 0.08, 0.03, 0.04)
#: 2023-11-14: users start somewhere in the 90 days from here.
START = 1_700_000_000
_SPAN_DAYS = 90
_RELOAD_SHARE = 0.10
_IN_SESSION_SHARE = 0.85


@dataclass(frozen=True)
class SyntheticEvents:
    """A synthetic log of `events` events; `users`/`items` default to events/50 and events/100."""

    events: int
    seed: int = 0
    users: int | None = None
    items: int | None = None
    chunk_events: int = 2_000_000

    def __post_init__(self) -> None:
        if self.events < 1 or self.chunk_events < 1:
            raise ConfigError(f"events and chunk_events must be at least 1, got {self.events} and {self.chunk_events}")
        if (self.users is not None and self.users < 1) or (self.items is not None and self.items < 1):
            raise ConfigError("users and items must be at least 1")

    @property
    def n_users(self) -> int:
        return self.users or max(1, self.events // 50)

    @property
    def n_items(self) -> int:
        return self.items or max(1, self.events // 100)

    def chunks(self) -> Iterator[pl.DataFrame]:
        """The log as frames of about `chunk_events` rows: user_id, item_id, timestamp, event_type."""
        rng = np.random.default_rng(self.seed)
        activity = rng.lognormal(0.0, 1.0, self.n_users)
        per_user = rng.multinomial(self.events, activity / activity.sum())
        item_ids = rng.permutation(self.n_items).astype(np.int32)
        starts = rng.integers(START, START + _SPAN_DAYS * 86_400, self.n_users)
        bounds = _block_bounds(per_user, self.chunk_events)
        for block, (first, last) in enumerate(zip(bounds[:-1], bounds[1:])):
            block_rng = np.random.default_rng([self.seed, block])
            yield _block(block_rng, np.arange(first, last, dtype=np.int32), per_user[first:last], starts[first:last], item_ids)

    def frame(self) -> pl.DataFrame:
        """The whole log in one frame (for sizes that fit in memory)."""
        return pl.concat(list(self.chunks()))


def _block_bounds(per_user: np.ndarray, chunk_events: int) -> np.ndarray:
    """User positions where blocks start: a new block each time `chunk_events` more events are dealt."""
    cumulative = np.cumsum(per_user)
    cuts = np.searchsorted(cumulative, np.arange(chunk_events, cumulative[-1], chunk_events), side="right")
    return np.unique(np.concatenate(([0], cuts, [len(per_user)])))


def _block(rng: np.random.Generator, users: np.ndarray, per_user: np.ndarray, user_starts: np.ndarray,
           item_ids: np.ndarray) -> pl.DataFrame:
    n_events = int(per_user.sum())
    active = per_user > 0
    user_of_event = np.repeat(users, per_user)
    firsts = np.concatenate(([0], np.cumsum(per_user)[:-1]))[active]
    items = item_ids[_zipf_ranks(rng, n_events, len(item_ids))]
    # A reload repeats the user's previous item: the consecutive-duplicate filter's work.
    reload = rng.random(n_events) < _RELOAD_SHARE
    reload[firsts] = False
    items = items[np.maximum.accumulate(np.where(reload, 0, np.arange(n_events)))]
    in_session = rng.random(n_events) < _IN_SESSION_SHARE
    gaps = np.where(in_session, rng.exponential(90, n_events), rng.exponential(2 * 86_400, n_events)).astype(np.int64)
    gaps[firsts] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[firsts], per_user[active])
    timestamps = np.repeat(user_starts, per_user) + elapsed
    event_codes = np.searchsorted(np.cumsum(EVENT_SHARES), rng.random(n_events) * 0.999999).astype(np.int8)
    order = np.argsort(timestamps, kind="stable")
    return pl.DataFrame(
        {"u": user_of_event[order], "i": items[order], "timestamp": timestamps[order], "e": event_codes[order]}
    ).select(
        user_id=pl.format("u{}", "u"),
        item_id=pl.format("i{}", "i"),
        timestamp="timestamp",
        event_type=pl.col("e").replace_strict(dict(enumerate(EVENT_TYPES)), return_dtype=pl.String),
    )


def _zipf_ranks(rng: np.random.Generator, n_events: int, n_items: int, exponent: float = 1.05) -> np.ndarray:
    cdf = np.cumsum(1.0 / np.arange(1, n_items + 1) ** exponent)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n_events))


def write_synthetic_events(log: SyntheticEvents, folder: str | Path) -> list[Path]:
    """Writes `log` as `part-00000.parquet`, `part-00001.parquet`, … in `folder` (created if needed),
    one chunk at a time; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, chunk in enumerate(log.chunks()):
        path = folder / f"part-{number:05d}.parquet"
        chunk.write_parquet(path)
        written.append(path)
    return written
