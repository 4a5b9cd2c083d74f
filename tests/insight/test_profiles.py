"""Profiles from a hand-made log: RFM, lifecycle stages by their stated rule, tastes, price level, rhythm."""

from __future__ import annotations

import polars as pl
import pytest

from shopformer.errors import DataError
from shopformer.insight.profiles import LifecycleRule, build_profiles

DAY = 86_400
NOW = 100 * DAY  # day 100, a Saturday at midnight UTC (day 0, 1970-01-01, was a Thursday)


def _log(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64,
                                      "event_type": pl.String}, orient="row")


CATALOG = pl.DataFrame({"item_id": ["a", "b", "c"], "category": ["Shoes", "Shoes", "Hats"],
                        "brand": ["Acme", "Bolt", "Acme"], "price": [10.0, 50.0, 90.0]})
LOG = _log([
    ("new", "a", NOW - 2 * DAY, "view"),
    ("active", "a", NOW - 40 * DAY, "view"), ("active", "b", NOW - 3 * DAY, "purchase"), ("active", "c", NOW - DAY, "view"),
    ("risky", "c", NOW - 50 * DAY, "view"), ("risky", "c", NOW - 9 * DAY, "purchase"),
    ("gone", "a", NOW - 60 * DAY, "view"), ("gone", "a", NOW - 30 * DAY, "view"),
    ("back", "b", NOW - 70 * DAY, "view"), ("back", "b", NOW - 3 * DAY, "view"),
])
RULE = LifecycleRule(14)


def test_lifecycle_stages_follow_the_stated_rule():
    profiles = build_profiles(LOG, CATALOG, now=NOW, rule=RULE)
    stages = dict(zip(profiles["user_id"], profiles["lifecycle"], strict=True))
    # active's longest silence (37 days) is also >= 14, but its last two events are 2 days apart:
    # reactivated needs the comeback within 7 days after the silence, which active also meets.
    assert stages == {"new": "new", "active": "reactivated", "risky": "at risk", "gone": "churned", "back": "reactivated"}
    assert "at risk: no event in the last 7 days" in RULE.describe()


def test_rfm_tastes_price_and_rhythm():
    row = build_profiles(LOG, CATALOG, now=NOW, rule=RULE).filter(pl.col("user_id") == "active").row(0, named=True)
    assert (row["events"], row["purchases"], row["monetary"], row["recency_days"]) == (3, 1, 50.0, 1.0)
    assert row["top_categories"][0] == {"name": "Shoes", "share": pytest.approx(0.667, abs=1e-3)}
    assert {b["name"] for b in row["top_brands"]} == {"Acme", "Bolt"}
    assert row["price_level"] == "mid-range" and row["price_percentile"] == pytest.approx(0.5, abs=1e-3)
    # Days 60, 97 and 99 are a Monday, a Wednesday and a Friday; equal counts list in weekday order.
    assert row["active_hours"] == [0] and row["active_weekdays"] == ["Monday", "Wednesday", "Friday"]
    assert row["rfm"].startswith("R") and len(row["rfm"]) == 6


def test_rfm_quintiles_rank_within_the_population():
    everyone = build_profiles(LOG, CATALOG, now=NOW, rule=RULE)
    alone = build_profiles(LOG.filter(pl.col("user_id") == "new"), CATALOG, now=NOW, rule=RULE, population=everyone)
    assert alone["rfm"][0] == everyone.filter(pl.col("user_id") == "new")["rfm"][0]


def test_one_event_user_and_no_catalog():
    profiles = build_profiles(LOG.filter(pl.col("user_id") == "new"))
    row = profiles.row(0, named=True)
    assert row["events"] == 1 and row["lifecycle"] == "new" and row["price_level"] is None and row["monetary"] == 0


def test_empty_log_is_a_clear_error():
    with pytest.raises(DataError, match="empty"):
        build_profiles(LOG.head(0))
