"""The report's tables, computed from plain inputs: an event log frame, a catalog frame, profiles, predictions.

Every function takes polars frames or arrays and returns a polars frame, so each section can be fed
from any source (a bundle's log, a service's store, a test's hand-made frame).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shopformer.data.schema import CANONICAL_EVENT_TYPES

__all__ = ["cohort_retention", "funnel", "reliability_bins", "rfm_grid", "top_items"]

_WEEK = "1w"


def _event_type_order(present: list[str]) -> list[str]:
    """Canonical event types first (the funnel's order), then any other type the log has, by name."""
    canonical = [t for t in CANONICAL_EVENT_TYPES if t in present]
    return canonical + sorted(set(present) - set(canonical))


def funnel(events: pl.DataFrame) -> pl.DataFrame:
    """Users and events per event type: `event_type, users, share_of_users, events`, in funnel order."""
    total = max(events["user_id"].n_unique(), 1)
    counts = events.group_by("event_type").agg(users=pl.col("user_id").n_unique(), events=pl.len())
    order = _event_type_order(counts["event_type"].to_list())
    rank = pl.col("event_type").replace_strict(order, list(range(len(order))), return_dtype=pl.Int64)
    table = counts.sort(rank).with_columns(share_of_users=(pl.col("users") / total).round(4))
    return table.select("event_type", "users", "share_of_users", "events")


def cohort_retention(events: pl.DataFrame, max_weeks: int = 8) -> pl.DataFrame:
    """Weekly cohorts (the week of a user's first event, Monday-based, UTC) and the share of each
    cohort active `k` weeks later: `cohort, users, week_0 … week_<max_weeks>` (null: not reached yet)."""
    weeks = events.select("user_id", week=pl.from_epoch("timestamp", time_unit="s").dt.truncate(_WEEK).dt.date())
    weeks = weeks.unique().with_columns(cohort=pl.col("week").min().over("user_id"))
    weeks = weeks.with_columns(offset=((pl.col("week") - pl.col("cohort")).dt.total_days() // 7).cast(pl.Int64))
    sizes = weeks.filter(pl.col("offset") == 0).group_by("cohort").agg(users=pl.len())
    active = weeks.filter(pl.col("offset") <= max_weeks).group_by("cohort", "offset").agg(active=pl.len())
    last_week = weeks["week"].max()
    table = sizes.sort("cohort")
    for k in range(max_weeks + 1):
        column = active.filter(pl.col("offset") == k).select("cohort", pl.col("active").alias(f"week_{k}"))
        table = table.join(column, on="cohort", how="left")
        reached = (pl.col("cohort") + pl.duration(weeks=k)) <= last_week
        share = (pl.col(f"week_{k}").fill_null(0) / pl.col("users")).round(3)
        table = table.with_columns(pl.when(reached).then(share).otherwise(None).alias(f"week_{k}"))
    return table.with_columns(pl.col("cohort").cast(pl.String))


def rfm_grid(profiles: pl.DataFrame) -> pl.DataFrame:
    """Users per recency x frequency score (1-5, 5 best) and their mean monetary score, from the
    profiles' `rfm` codes ("R5F3M2"): `recency, frequency, users, mean_monetary_score`."""
    scores = profiles.select(
        recency=pl.col("rfm").str.slice(1, 1).cast(pl.Int64),
        frequency=pl.col("rfm").str.slice(3, 1).cast(pl.Int64),
        monetary=pl.col("rfm").str.slice(5, 1).cast(pl.Int64),
    )
    grid = scores.group_by("recency", "frequency").agg(users=pl.len(), mean_monetary_score=pl.col("monetary").mean().round(2))
    return grid.sort("recency", "frequency", descending=[True, True])


def top_items(events: pl.DataFrame, catalog: pl.DataFrame | None = None, k: int = 15) -> pl.DataFrame:
    """The `k` items bought most (then viewed most): `item_id, users, views, carts, purchases,
    conversion` (purchases per view) and the catalog's `title, category, price` where it has them."""
    named = events.filter(pl.col("item_id").is_not_null())
    is_type = {t: (pl.col("event_type") == t).sum() for t in ("view", "cart", "purchase")}
    table = named.group_by("item_id").agg(users=pl.col("user_id").n_unique(), views=is_type["view"],
                                          carts=is_type["cart"], purchases=is_type["purchase"])
    table = table.with_columns(conversion=(pl.col("purchases") / pl.col("views").clip(lower_bound=1)).round(3))
    table = table.sort(["purchases", "views", "item_id"], descending=[True, True, False]).head(k)
    if catalog is not None:
        columns = [c for c in ("title", "category", "price") if c in catalog.columns]
        table = table.join(catalog.select("item_id", *columns), on="item_id", how="left", maintain_order="left")
    return table


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """The reliability diagram's points: per non-empty equal-width bin, `mean_predicted, observed_rate, count`."""
    probabilities = np.asarray(probabilities, dtype=float)
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    frame = pl.DataFrame({"bin": which, "p": probabilities, "y": np.asarray(labels, dtype=float)})
    table = frame.group_by("bin").agg(mean_predicted=pl.col("p").mean(), observed_rate=pl.col("y").mean(), count=pl.len())
    return table.sort("bin").drop("bin").with_columns(pl.col("mean_predicted", "observed_rate").round(4))
