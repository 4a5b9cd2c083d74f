"""The demo shop's customers: latent segments, tastes, price sensitivity, churn, bots and fraudsters.

Also the shop's activity rhythm (busy evenings and weekends), used to place sessions in time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shopformer.data.synth.catalog import DEPARTMENTS, N_DEPARTMENTS

DAY = 86_400


@dataclass(frozen=True)
class Segment:
    """What a latent customer segment changes in behaviour."""

    name: str
    share: float
    sessions_per_day: float
    price_sensitivity: float
    #: Added to the purchase log-odds of every session.
    conversion_bias: float
    #: Chance of re-ordering a consumable that has run out, at the next visit.
    repeat_propensity: float
    mean_views: float


SEGMENTS: tuple[Segment, ...] = (
    Segment("casual_browser", 0.40, 0.10, 1.0, -0.4, 0.25, 4.0),
    Segment("bargain_hunter", 0.30, 0.20, 2.0, -0.2, 0.35, 6.5),
    Segment("loyal_regular", 0.15, 0.40, 0.8, 0.5, 0.75, 4.0),
    Segment("premium_shopper", 0.15, 0.18, 0.3, 0.2, 0.45, 4.5),
)

# Shop-local (UTC) activity by hour of day and by weekday (Monday first): quiet nights,
# a lunch bump, busy evenings and weekends.
HOUR_WEIGHTS = np.array([
    0.15, 0.08, 0.05, 0.04, 0.04, 0.06, 0.15, 0.35, 0.55, 0.65, 0.70, 0.80,
    0.95, 0.90, 0.75, 0.70, 0.72, 0.80, 0.95, 1.00, 1.00, 0.90, 0.60, 0.30,
])
WEEKDAY_WEIGHTS = np.array([0.95, 0.92, 0.93, 0.95, 1.00, 1.15, 1.20])


class ActivityRhythm:
    """Maps uniform draws to times that follow the hourly and weekly rhythm (inverse CDF)."""

    def __init__(self, window_start: int, days: int, first_weekday: int) -> None:
        hours = np.arange(days * 24)
        weekday = (first_weekday + hours // 24) % 7
        intensity = HOUR_WEIGHTS[hours % 24] * WEEKDAY_WEIGHTS[weekday]
        self.start = window_start
        self._hour_edges = np.arange(days * 24 + 1) * 3600.0
        self._cumulative = np.concatenate([[0.0], np.cumsum(intensity)])

    def times_between(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Times in [lo, hi) (unix seconds), at quantile `u` of the rhythm's mass in that range."""
        c_lo = np.interp(lo - self.start, self._hour_edges, self._cumulative)
        c_hi = np.interp(hi - self.start, self._hour_edges, self._cumulative)
        offset = np.interp(c_lo + (c_hi - c_lo) * u, self._cumulative, self._hour_edges)
        return self.start + offset


@dataclass(frozen=True)
class DemoUsers:
    """Hidden traits of every customer; `ground_truth()` is what the generator writes out."""

    segment: np.ndarray  # int index into SEGMENTS
    taste: np.ndarray  # (users, departments), rows sum to 1
    price_sensitivity: np.ndarray
    activity: np.ndarray  # multiplies the segment's session rate
    signup: np.ndarray  # unix seconds
    active_start: np.ndarray
    active_end: np.ndarray  # churn time for churners, else the end of the window
    is_churner: np.ndarray
    is_bot: np.ndarray
    is_fraudster: np.ndarray

    def __len__(self) -> int:
        return len(self.segment)

    @property
    def is_regular(self) -> np.ndarray:
        return ~(self.is_bot | self.is_fraudster)

    def ground_truth(self, user_ids: list[str]) -> pl.DataFrame:
        def iso(seconds: np.ndarray) -> pl.Series:
            return pl.from_epoch(pl.Series(seconds.astype(np.int64)), "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")

        churn = [t if churner else None for t, churner in zip(iso(self.active_end), self.is_churner)]
        columns = {
            "user_id": user_ids,
            "segment": [SEGMENTS[s].name for s in self.segment],
            "price_sensitivity": np.round(self.price_sensitivity, 4),
            "favourite_department": [DEPARTMENTS[d].name for d in self.taste.argmax(axis=1)],
            "signup_time": iso(self.signup),
            "is_churner": self.is_churner.astype(np.int8),
            "churn_time": pl.Series(churn, dtype=pl.String),
            "is_bot": self.is_bot.astype(np.int8),
            "is_fraudster": self.is_fraudster.astype(np.int8),
        }
        for d, dept in enumerate(DEPARTMENTS):
            columns[f"taste_{dept.name.lower()}"] = np.round(self.taste[:, d], 4)
        return pl.DataFrame(columns)


def _pick_flags(rng: np.random.Generator, n: int, fraction: float, taken: np.ndarray) -> np.ndarray:
    """Mark round(n * fraction) users (at least one when fraction > 0) not already taken."""
    count = 0 if fraction <= 0 else max(1, round(n * fraction))
    free = np.flatnonzero(~taken)
    flags = np.zeros(n, dtype=bool)
    flags[rng.choice(free, size=min(count, len(free)), replace=False)] = True
    return flags


def draw_users(
    rng: np.random.Generator,
    n_users: int,
    window: tuple[int, int],
    new_user_fraction: float,
    churner_fraction: float,
    bot_fraction: float,
    fraudster_fraction: float,
) -> DemoUsers:
    """Draw customers with their traits and the time range in which each one is active."""
    start, end = window
    segment = rng.choice(len(SEGMENTS), size=n_users, p=[s.share for s in SEGMENTS])
    # A small Dirichlet concentration gives each user one or two favourite departments.
    taste = rng.dirichlet(np.full(N_DEPARTMENTS, 0.35), size=n_users)
    sensitivity = np.array([SEGMENTS[s].price_sensitivity for s in segment]) * rng.lognormal(0, 0.25, n_users)
    # Mean-one log-normal activity: a few heavy users, many light ones.
    activity = rng.lognormal(-0.245, 0.7, n_users)

    is_bot = _pick_flags(rng, n_users, bot_fraction, np.zeros(n_users, dtype=bool))
    is_fraudster = _pick_flags(rng, n_users, fraudster_fraction, is_bot)
    is_new = rng.random(n_users) < new_user_fraction
    signup = np.where(
        is_new,
        rng.uniform(start, end - 3 * DAY, n_users),
        start - rng.uniform(30 * DAY, 720 * DAY, n_users),
    )
    # Fraudsters open fresh accounts in the second part of the window.
    signup = np.where(is_fraudster, rng.uniform(start + (end - start) / 3, end - 3 * DAY, n_users), signup)
    active_start = np.maximum(signup, start) + 600.0

    churn_at = active_start + np.maximum(2 * DAY, rng.uniform(0.15, 0.85, n_users) * (end - active_start))
    is_churner = (rng.random(n_users) < churner_fraction) & ~is_bot & ~is_fraudster & (churn_at < end - DAY)
    active_end = np.where(is_churner, np.floor(churn_at), float(end))
    return DemoUsers(
        segment=segment, taste=taste, price_sensitivity=sensitivity, activity=activity,
        signup=np.floor(signup), active_start=np.ceil(active_start), active_end=active_end,
        is_churner=is_churner, is_bot=is_bot, is_fraudster=is_fraudster,
    )
