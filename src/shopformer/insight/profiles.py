"""Who each user is, from their events: RFM, lifecycle stage, tastes, price level and rhythm.

    profiles = build_profiles(events, catalog)        # one row per user
    profiles.filter(pl.col("lifecycle") == "at risk")

Everything here reads the event log (`user_id, item_id, timestamp, event_type`, optional `value`,
`quantity`, `session_id`) and the catalog's `category, brand, price`; the model's predictions,
segment, anomaly score and user vector are joined on by `shopformer.predict.insight`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shopformer.errors import DataError

__all__ = ["LifecycleRule", "build_profiles", "lifecycle_rule"]

_DAY = 86_400
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: How many favourite categories / brands / hours / weekdays a profile lists.
_TOP = 3
#: Price-level labels by the user's median price percentile in the catalog (below 1/3, below 2/3, above).
_PRICE_LABELS = ("budget", "mid-range", "premium")


@dataclass(frozen=True)
class LifecycleRule:
    """The lifecycle stages' windows in days (see `describe`)."""

    window_days: float

    def describe(self) -> str:
        w, half = _days(self.window_days), _days(self.window_days / 2)
        return (f"new: first event within the last {w}; churned: no event in the last {w}; at risk: no event in "
                f"the last {half}; reactivated: back within the last {half} after a silence of {w} or more; "
                f"active: everyone else")


def lifecycle_rule(events: pl.DataFrame) -> LifecycleRule:
    """The default rule for a log: a quarter of its time span, between one and thirty days."""
    span_days = (events["timestamp"].max() - events["timestamp"].min()) / _DAY if events.height else 0.0
    return LifecycleRule(float(min(30, max(1, round(span_days / 4)))))


def build_profiles(events: pl.DataFrame, catalog: pl.DataFrame | None = None, *, now: int | None = None,
                   rule: LifecycleRule | None = None, population: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per user of `events`, as of `now` (default: the log's last event).

    Columns: `first_seen, last_seen, events, sessions, views, carts, purchases, recency_days,
    frequency` (purchases), `monetary` (purchase value; price x quantity where events carry no value),
    `conversion` (purchases per view), `rfm` ("R5F3M2": quintiles, 5 best), `lifecycle`,
    `top_categories` / `top_brands` (lists of `{name, share}`), `price_percentile` (the median price
    of the user's items within the catalog's prices), `price_level`, `active_hours`, `active_weekdays`.
    RFM quintiles rank users among `population` (profiles of the whole base; default: these users).
    """
    if events.is_empty():
        raise DataError("the event log is empty: there is no user to profile", column="user_id")
    now = int(events["timestamp"].max()) if now is None else int(now)
    rule = rule or lifecycle_rule(events)
    annotated = _annotated(events, catalog)
    table = _activity(annotated, now).join(_lifecycle(annotated, now, rule), on="user_id")
    table = table.with_columns(rfm=_rfm_codes(table, table if population is None else population))
    for column, name in (("category", "top_categories"), ("brand", "top_brands")):
        table = table.join(_favourites(annotated, column, name), on="user_id", how="left")
    table = table.join(_price_level(annotated, catalog), on="user_id", how="left")
    table = table.join(_rhythm(annotated), on="user_id", how="left")
    return table.sort("user_id")


def _days(days: float) -> str:
    return f"{days:g} day{'s' if days != 1 else ''}"


def _annotated(events: pl.DataFrame, catalog: pl.DataFrame | None) -> pl.DataFrame:
    """Events with their item's category, brand and price (null where the catalog has none)."""
    columns = [c for c in ("category", "brand", "price") if catalog is not None and c in catalog.columns]
    frame = events.select("user_id", "item_id", "timestamp", "event_type",
                          *[c for c in ("value", "quantity", "session_id") if c in events.columns])
    frame = frame.drop([c for c in columns if c in frame.columns])
    if columns:
        frame = frame.join(catalog.select("item_id", *columns), on="item_id", how="left")
    for name, dtype in (("category", pl.String), ("brand", pl.String), ("price", pl.Float64),
                        ("value", pl.Float64), ("quantity", pl.Float64)):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.sort("user_id", "timestamp", maintain_order=True)


def _activity(events: pl.DataFrame, now: int) -> pl.DataFrame:
    is_purchase = pl.col("event_type") == "purchase"
    spend = pl.coalesce(pl.col("value"), pl.col("price") * pl.col("quantity").fill_null(1.0))
    sessions = pl.col("session_id").n_unique() if "session_id" in events.columns else pl.lit(None, dtype=pl.UInt32)
    table = events.group_by("user_id").agg(
        first_seen=pl.col("timestamp").min(), last_seen=pl.col("timestamp").max(), events=pl.len(),
        sessions=sessions, views=(pl.col("event_type") == "view").sum(), carts=(pl.col("event_type") == "cart").sum(),
        purchases=is_purchase.sum(), monetary=spend.filter(is_purchase).sum().fill_null(0.0),
        last_purchase=pl.col("timestamp").filter(is_purchase).max())
    return table.with_columns(
        recency_days=((now - pl.col("last_seen")) / _DAY).round(2),
        frequency=pl.col("purchases"),
        conversion=(pl.col("purchases") / pl.col("views").clip(lower_bound=1)).round(4),
        monetary=pl.col("monetary").round(2))


def _rfm_codes(table: pl.DataFrame, population: pl.DataFrame) -> pl.Series:
    """"R5F3M2": quintile scores within `population`, 5 for the most recent, frequent and valuable."""
    scores = [_quintile(-table[c].to_numpy(), -population[c].to_numpy()) if c == "recency_days"
              else _quintile(table[c].to_numpy(), population[c].to_numpy())
              for c in ("recency_days", "frequency", "monetary")]
    return pl.Series([f"R{r}F{f}M{m}" for r, f, m in zip(*scores, strict=True)], dtype=pl.String)


def _quintile(values: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Scores 1..5 by the share of the population strictly below each value (ties share the lower
    score, so the many users without a purchase all score 1)."""
    below = np.searchsorted(np.sort(population.astype(np.float64)), values.astype(np.float64), side="left")
    return (1 + np.floor(5 * below / max(len(population), 1))).astype(int).clip(1, 5)


def _lifecycle(events: pl.DataFrame, now: int, rule: LifecycleRule) -> pl.DataFrame:
    window, half = rule.window_days * _DAY, rule.window_days * _DAY / 2
    gaps = events.group_by("user_id").agg(
        first=pl.col("timestamp").min(), last=pl.col("timestamp").max(),
        longest_gap=pl.col("timestamp").diff().max().fill_null(0))
    stage = (pl.when(now - pl.col("first") <= window).then(pl.lit("new"))
             .when(now - pl.col("last") > window).then(pl.lit("churned"))
             .when(now - pl.col("last") > half).then(pl.lit("at risk"))
             .when(pl.col("longest_gap") >= window).then(pl.lit("reactivated"))
             .otherwise(pl.lit("active")))
    return gaps.select("user_id", lifecycle=stage)


def _favourites(events: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """The user's `_TOP` most frequent values of `column` with their share of the user's events."""
    named = events.filter(pl.col(column).is_not_null())
    counts = named.group_by("user_id", column).agg(n=pl.len())
    counts = counts.with_columns(share=(pl.col("n") / pl.col("n").sum().over("user_id")).round(3))
    top = counts.sort(["user_id", "n", column], descending=[False, True, False]).group_by("user_id", maintain_order=True).head(_TOP)
    return top.group_by("user_id").agg(pl.struct(name=pl.col(column), share=pl.col("share")).alias(name))


def _price_level(events: pl.DataFrame, catalog: pl.DataFrame | None) -> pl.DataFrame:
    """Percentile of the user's median item price among the catalog's prices, and its label."""
    if catalog is None or "price" not in catalog.columns or catalog["price"].drop_nulls().is_empty():
        return events.select("user_id").unique().with_columns(
            price_percentile=pl.lit(None, dtype=pl.Float64), price_level=pl.lit(None, dtype=pl.String))
    prices = np.sort(catalog["price"].drop_nulls().to_numpy())
    median = events.group_by("user_id").agg(median_price=pl.col("price").median())
    wanted = median["median_price"].fill_null(np.nan).to_numpy()
    # Mid-rank percentile: a price equal to the catalog's median item sits at 0.5, not above it.
    where = (np.searchsorted(prices, wanted, side="left") + np.searchsorted(prices, wanted, side="right")) / (2 * len(prices))
    percentile = pl.Series(np.where(median["median_price"].is_null().to_numpy(), np.nan, where)).fill_nan(None).round(3)
    labels = pl.Series([None if p is None else _PRICE_LABELS[min(int(p * 3), 2)] for p in percentile.to_list()], dtype=pl.String)
    return median.select("user_id").with_columns(price_percentile=percentile, price_level=labels)


def _rhythm(events: pl.DataFrame) -> pl.DataFrame:
    """The user's `_TOP` busiest hours of the day and weekdays (UTC)."""
    moments = events.select("user_id", moment=pl.from_epoch("timestamp", time_unit="s"))
    moments = moments.with_columns(hour=pl.col("moment").dt.hour(), weekday=pl.col("moment").dt.weekday() - 1)

    def busiest(column: str) -> pl.DataFrame:
        counts = moments.group_by("user_id", column).agg(n=pl.len())
        top = counts.sort(["user_id", "n", column], descending=[False, True, False]).group_by("user_id", maintain_order=True).head(_TOP)
        return top.group_by("user_id", maintain_order=True).agg(pl.col(column))

    hours, weekdays = busiest("hour"), busiest("weekday")
    weekdays = weekdays.with_columns(pl.col("weekday").list.eval(pl.element().replace_strict(
        list(range(7)), list(_WEEKDAYS), return_dtype=pl.String)))
    return hours.rename({"hour": "active_hours"}).join(weekdays.rename({"weekday": "active_weekdays"}), on="user_id")
