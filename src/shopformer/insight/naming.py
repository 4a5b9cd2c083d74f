"""Segments in numbers and words: per-segment traits and a name read off them.

A name has three parts, each from a stated comparison with the whole user base: value (the
segment's share of value against its share of users: ≥ 1.5x "high-value", ≤ 0.5x "low-value",
no purchase at all "non-buying"), price level (the segment's most common level when it is not
mid-range) and activity (churn risk ≥ 1.3x the base's "lapsing", more than half new users
"newcomers", purchases per user ≥ 1.5x the base's "loyal", else "regulars"). Names that
collide get the segment's top category appended.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["describe_segments"]

_AT_RISK = ("at risk", "churned")


def describe_segments(profiles: pl.DataFrame, labels: np.ndarray, k: int, churn: np.ndarray | None = None) -> pl.DataFrame:
    """One row per segment `0..k-1` (see the module docstring for how names are chosen)."""
    risk = (pl.Series(churn, dtype=pl.Float64) if churn is not None
            else profiles["lifecycle"].is_in(_AT_RISK).cast(pl.Float64))
    frame = profiles.with_columns(segment=pl.Series(labels, dtype=pl.Int64), churn_risk=risk,
                                  top_category=pl.col("top_categories").list.first().struct.field("name")
                                  if "top_categories" in profiles.columns else pl.lit(None, dtype=pl.String))
    total_value = max(float(frame["monetary"].sum()), 1e-9)
    table = frame.group_by("segment").agg(
        users=pl.len(), value_share=(pl.col("monetary").sum() / total_value).round(3),
        purchases_per_user=pl.col("frequency").mean().round(3), conversion=pl.col("conversion").mean().round(4),
        median_recency_days=pl.col("recency_days").median().round(1), churn_risk=pl.col("churn_risk").mean().round(3),
        new_share=(pl.col("lifecycle") == "new").mean(),
        top_category=pl.col("top_category").drop_nulls().mode().sort().first(),
        price_level=pl.col("price_level").drop_nulls().mode().sort().first())
    table = pl.DataFrame({"segment": np.arange(k)}).join(table, on="segment", how="left").with_columns(
        pl.col("users").fill_null(0), user_share=(pl.col("users").fill_null(0) / frame.height).round(3))
    base = {"purchases": float(frame["frequency"].mean()), "risk": float(frame["churn_risk"].mean())}
    names = _unique([_name(row, base) for row in table.iter_rows(named=True)], table["top_category"].to_list())
    sentences = [_sentence(row) for row in table.iter_rows(named=True)]
    return table.drop("new_share").with_columns(name=pl.Series(names), description=pl.Series(sentences)).select(
        "segment", "name", "users", "user_share", "value_share", "purchases_per_user", "conversion",
        "median_recency_days", "top_category", "price_level", "churn_risk", "description")


def _name(row: dict, base: dict) -> str:
    if not row["users"]:
        return "empty"
    ratio = (row["value_share"] or 0.0) / max(row["user_share"], 1e-9)
    value = ("non-buying" if not row["purchases_per_user"] else "high-value" if ratio >= 1.5
             else "low-value" if ratio <= 0.5 else "")
    price = row["price_level"] if row["price_level"] in ("budget", "premium") else ""
    if row["churn_risk"] >= 1.3 * base["risk"] and row["churn_risk"] > 0:
        activity = "lapsing"
    elif row["new_share"] > 0.5:
        activity = "newcomers"
    elif row["purchases_per_user"] >= 1.5 * base["purchases"] and base["purchases"] > 0:
        activity = "loyal"
    else:
        activity = "regulars"
    words = " ".join(w for w in (value, price, activity) if w)
    return words[0].upper() + words[1:]


def _unique(names: list[str], categories: list[str | None]) -> list[str]:
    """Appends the top category's last level to names used more than once (then a number if needed)."""
    out = [f"{n} · {c.split(' > ')[-1]}" if names.count(n) > 1 and c else n for n, c in zip(names, categories, strict=True)]
    return [f"{n} ({i + 1})" if out.count(n) > 1 else n for i, n in enumerate(out)]


def _sentence(row: dict) -> str:
    if not row["users"]:
        return "No user falls in this segment."
    parts = [f"{row['users']:,} users ({row['user_share']:.0%}) bringing {row['value_share'] or 0:.0%} of value",
             f"{row['purchases_per_user']:.2f} purchases each, last seen {row['median_recency_days']:g} days ago (median)",
             f"churn risk {row['churn_risk']:.0%}"]
    if row["top_category"]:
        parts.append(f"mostly {row['top_category']}")
    if row["price_level"]:
        parts.append(f"{row['price_level']} prices")
    return "; ".join(parts) + "."
