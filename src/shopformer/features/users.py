"""Hand-crafted features per example: recency, frequency, monetary, funnel and session signals.

Everything is computed from the events a caller lets each example see (for tasks, `visible_events`:
the user's first `history_end` events) and the example's own columns (`cutoff`, the candidate
`item_id`), so a feature can never read an event at or after the cut-off. The columns are the same
for every log (all canonical event types), so a model fitted on one log's examples scores another's,
e.g. live users in the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shopformer.data.schema import CANONICAL_EVENT_TYPES, Catalog

__all__ = ["NEVER_DAYS", "FeatureTable", "user_features"]

_DAY = 86_400.0
#: Days standing in for "never" in recency features (no purchase yet, item never interacted with).
NEVER_DAYS = 1000.0
#: Windows (days before the cut-off) of the per-type counts, besides the whole history.
_WINDOWS = {"1d": 1.0, "7d": 7.0}


@dataclass(frozen=True)
class FeatureTable:
    """Feature matrix in example order (`values[i]` belongs to example row `i`)."""

    names: tuple[str, ...]
    values: np.ndarray


def _item_column(examples: pl.DataFrame) -> list[str]:
    return ["item_id"] if "item_id" in examples.columns else []


def user_features(visible: pl.DataFrame, examples: pl.DataFrame, catalog: Catalog | None) -> FeatureTable:
    """The feature matrix of `examples` (float32, one row per example, no missing values).

    `examples` has `example_id`, `cutoff` and, for item-level examples, the candidate `item_id`;
    `visible` holds the events each example may see, one row per (example_id, event), in order.
    """
    events = _annotated(visible, examples, catalog)
    aggregates = [*_frequency(), *_recency(), *_monetary(), *_session(), *_last_event()]
    if _item_column(examples):
        aggregates += _item(events)
    per_example = events.group_by("example_id").agg(aggregates)
    per_example = per_example.with_columns(_ratios()).with_columns(_entropy(events, per_example))
    table = examples.select("example_id").join(per_example, on="example_id", how="left", maintain_order="left").drop("example_id")
    table = table.with_columns(pl.col(c).fill_null(NEVER_DAYS) for c in table.columns if "recency" in c)
    values = table.fill_null(0.0).fill_nan(0.0).to_numpy().astype(np.float32)
    return FeatureTable(tuple(table.columns), values)


def _annotated(visible: pl.DataFrame, examples: pl.DataFrame, catalog: Catalog | None) -> pl.DataFrame:
    """Visible events with their age (days before the cut-off), price, category and current-session flag."""
    keys = examples.select("example_id", "cutoff", *_item_column(examples)).rename({"item_id": "target_item"}, strict=False)
    frame = visible.join(keys, on="example_id", maintain_order="left")
    catalog = _catalog_columns(catalog)
    if catalog is not None:
        frame = frame.join(catalog, on="item_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(catalog_price=pl.lit(None, pl.Float64), category=pl.lit(None, pl.String))
    value = pl.col("value") if "value" in frame.columns else pl.lit(None, pl.Float64)
    frame = frame.with_columns(
        age=(pl.col("cutoff") - pl.col("timestamp")) / _DAY,
        price=pl.coalesce(value, pl.col("catalog_price")),
        in_session=pl.col("session_id") == pl.col("session_id").last().over("example_id"),
    )
    if "target_item" in frame.columns and catalog is not None:
        target_price = catalog.select(target_item="item_id", target_price="catalog_price")
        frame = frame.join(target_price, on="target_item", how="left", maintain_order="left")
    return frame


def _catalog_columns(catalog: Catalog | None) -> pl.DataFrame | None:
    if catalog is None:
        return None
    catalog = catalog.frame
    price = pl.col("price") if "price" in catalog.columns else pl.lit(None, pl.Float64)
    category = pl.col("category") if "category" in catalog.columns else pl.lit(None, pl.String)
    return catalog.select("item_id", catalog_price=price, category=category)


def _is(event_type: str) -> pl.Expr:
    return pl.col("event_type") == event_type


def _frequency() -> list[pl.Expr]:
    counts = [pl.len().alias("n_events"), pl.col("session_id").n_unique().alias("n_sessions"),
              pl.col("item_id").n_unique().alias("n_items"),
              (pl.col("timestamp") // int(_DAY)).n_unique().alias("n_active_days")]
    for event_type in CANONICAL_EVENT_TYPES:
        counts.append(_is(event_type).sum().alias(f"n_{event_type}"))
        counts.append((_is(event_type) & pl.col("in_session")).sum().alias(f"session_n_{event_type}"))
        counts += [(_is(event_type) & (pl.col("age") < days)).sum().alias(f"n_{event_type}_{name}")
                   for name, days in _WINDOWS.items()]
    counts += [(pl.col("age") < days).sum().alias(f"n_events_{name}") for name, days in _WINDOWS.items()]
    return counts


def _recency() -> list[pl.Expr]:
    last_purchase = pl.col("position").filter(_is("purchase")).max()
    return [
        pl.col("age").min().alias("recency_days"),
        pl.col("age").max().alias("tenure_days"),
        pl.col("age").filter(_is("purchase")).min().alias("recency_purchase_days"),
        pl.col("age").filter(_is("cart")).min().alias("recency_cart_days"),
        # Events since the last purchase: the whole history when there was none.
        (pl.col("position").max() - last_purchase.fill_null(-1)).alias("events_since_purchase"),
    ]


def _monetary() -> list[pl.Expr]:
    log_price = pl.col("price").log1p()
    return [
        pl.col("price").filter(_is("purchase")).sum().alias("monetary"),
        log_price.filter(~_is("purchase")).mean().alias("mean_log_price_browsed"),
        log_price.filter(_is("purchase")).mean().alias("mean_log_price_bought"),
        log_price.filter(pl.col("in_session")).mean().alias("session_mean_log_price"),
        log_price.filter(_is("cart")).mean().alias("mean_log_price_carted"),
    ]


def _session() -> list[pl.Expr]:
    session = pl.col("in_session")
    stamps = pl.col("timestamp").filter(session)
    return [
        session.sum().alias("session_length"),
        (stamps.max() - stamps.min()).alias("session_dwell_seconds"),
        ((stamps.max() - stamps.min()) / (session.sum() - 1).clip(lower_bound=1)).alias("session_mean_gap_seconds"),
        pl.col("item_id").filter(session).n_unique().alias("session_items"),
        pl.col("category").filter(session).n_unique().alias("session_categories"),
        (pl.col("age").filter(session).min()).alias("recency_session_days"),
        # Time since the session before this one ended: how often the user comes back.
        (pl.col("age").filter(~session).min() - pl.col("age").filter(session).max()).alias("gap_before_session_days"),
    ]


def _last_event() -> list[pl.Expr]:
    return [(pl.col("event_type").last() == t).cast(pl.Int8).alias(f"last_is_{t}") for t in CANONICAL_EVENT_TYPES]


def _item(events: pl.DataFrame) -> list[pl.Expr]:
    """Features of the candidate item (item-propensity): how and how recently the user met it."""
    target = pl.col("item_id") == pl.col("target_item")
    out = [target.sum().alias("item_events"), (target & pl.col("in_session")).sum().alias("item_session_events"),
           pl.col("age").filter(target).min().alias("item_recency_days"),
           (pl.col("position").max() - pl.col("position").filter(target).max()).alias("item_events_since")]
    out += [(target & _is(t)).sum().alias(f"item_n_{t}") for t in ("view", "click", "favourite", "cart", "purchase")]
    out.append(((pl.col("category") == pl.col("category").filter(target).first()).sum()).alias("item_category_events"))
    if "target_price" in events.columns:
        target_log_price = pl.col("target_price").first().log1p()
        out += [target_log_price.alias("item_log_price"),
                (target_log_price - pl.col("price").log1p().mean()).alias("item_relative_log_price")]
    return out


def _ratios() -> list[pl.Expr]:
    """Funnel ratios, smoothed by one so that short histories stay finite."""
    browse = pl.col("n_view") + pl.col("n_click")
    return [
        (pl.col("n_cart") / (browse + 1)).alias("cart_per_view"),
        (pl.col("n_purchase") / (browse + 1)).alias("purchase_per_view"),
        (pl.col("n_purchase") / (pl.col("n_cart") + 1)).alias("purchase_per_cart"),
        (pl.col("n_favourite") / (browse + 1)).alias("favourite_per_view"),
        (pl.col("session_n_cart") / (pl.col("session_length") + 1)).alias("session_cart_share"),
        (pl.col("n_events") / (pl.col("n_active_days"))).alias("events_per_active_day"),
    ]


def _entropy(events: pl.DataFrame, per_example: pl.DataFrame) -> pl.Series:
    """Shannon entropy (nats) of the categories a user met: a focused shopper vs a browser."""
    counts = events.filter(pl.col("category").is_not_null()).group_by("example_id", "category").len()
    share = pl.col("len") / pl.col("len").sum().over("example_id")
    entropy = counts.with_columns(h=-(share * share.log())).group_by("example_id").agg(pl.col("h").sum())
    joined = per_example.select("example_id").join(entropy, on="example_id", how="left", maintain_order="left")
    return joined["h"].fill_null(0.0).alias("category_entropy")
