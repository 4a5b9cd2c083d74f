"""Visitors who do not shop like customers: scraping bots and fraudsters with stolen cards.

Bots view many items a few seconds apart and never buy. Fraudsters open a fresh account and within
a day or two buy several expensive items in fast bursts, often more than one of each.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shopformer.data.synth.catalog import DemoCatalog
from shopformer.data.synth.sessions import (
    CART,
    PRE_LEAD,
    PURCHASE,
    SESSION_SCHEMA,
    VIEW,
    event_rows,
    keep_non_overlapping,
)
from shopformer.data.synth.users import DemoUsers


def _offsets(step: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-row seconds since the session start, the first row at 0, rows `step` apart."""
    first = np.cumsum(counts) - counts
    step = step.copy()
    step[first] = 0.0
    cumulative = np.cumsum(step)
    return cumulative - np.repeat(cumulative[first], counts)


def _session_frame(user: np.ndarray, start: np.ndarray, kind: str, probability: float) -> pl.DataFrame:
    n = len(user)
    return pl.DataFrame({
        "session": np.arange(n), "user": user, "start": start.astype(np.int64), "kind": [kind] * n,
        "true_purchase_probability": np.full(n, probability), "purchased": np.full(n, int(probability > 0.5)),
    }, schema=SESSION_SCHEMA)


def simulate_bots(rng: np.random.Generator, users: DemoUsers, catalog: DemoCatalog):
    """Crawler sessions: 40-150 views of random items, 1-4 seconds apart, at any hour."""
    bots = np.flatnonzero(users.is_bot)
    user = np.repeat(bots, rng.integers(10, 26, len(bots)))
    start = np.floor(rng.uniform(users.active_start[user] + PRE_LEAD, users.active_end[user] - 4 * 3600.0))
    order = np.lexsort((start, user))
    user, start = user[order], start[order]
    n_views = rng.integers(40, 151, len(user))
    offsets = _offsets(rng.uniform(1.0, 4.0, n_views.sum()), n_views)
    end = start + offsets[np.cumsum(n_views) - 1]
    keep = keep_non_overlapping(user, start, end, users.active_end[user])
    row_keep = np.repeat(keep, n_views)
    session = np.repeat(np.cumsum(keep) - 1, n_views)[row_keep]
    item = rng.integers(0, len(catalog), n_views.sum())[row_keep]
    ts = (np.repeat(start, n_views) + offsets)[row_keep]
    events = event_rows(session, np.repeat(user, n_views)[row_keep], item, ts, VIEW)
    return _session_frame(user[keep], start[keep], "bot", 0.0), events


def simulate_fraud(rng: np.random.Generator, users: DemoUsers, catalog: DemoCatalog):
    """One to three bursts per new account: view, cart and buy 3-7 of the shop's priciest items."""
    fraudsters = np.flatnonzero(users.is_fraudster)
    per_user = rng.integers(1, 4, len(fraudsters))
    user = np.repeat(fraudsters, per_user)
    # Bursts a few hours apart, starting soon after the account was opened.
    spacing = _offsets(rng.uniform(2 * 3600.0, 10 * 3600.0, len(user)), per_user)
    start = np.floor(users.active_start[user] + PRE_LEAD + rng.uniform(0, 3600.0, len(user)) + spacing)
    n_items = rng.integers(3, 8, len(user))
    expensive = np.flatnonzero(catalog.price >= np.quantile(catalog.price, 0.8))
    item = expensive[rng.integers(0, len(expensive), n_items.sum())]
    session = np.repeat(np.arange(len(user)), n_items)
    row_user = user[session]
    view_ts = np.floor(start[session] + _offsets(rng.uniform(15.0, 45.0, n_items.sum()), n_items))
    cart_ts = view_ts + np.floor(rng.uniform(5.0, 12.0, len(item)))
    checkout = np.maximum.reduceat(cart_ts, np.cumsum(n_items) - n_items) + np.floor(rng.uniform(30.0, 90.0, len(user)))
    quantity = rng.integers(1, 4, len(item))
    events = pl.concat([
        event_rows(session, row_user, item, view_ts, VIEW),
        event_rows(session, row_user, item, cart_ts, CART, quantity),
        event_rows(session, row_user, item, checkout[session], PURCHASE, quantity),
    ])
    return _session_frame(user, start, "fraud", 1.0), events
