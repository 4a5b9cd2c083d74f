"""The report's tables on hand-made logs, against counts worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from shopformer.report.analytics import cohort_retention, funnel, reliability_bins, rfm_grid, top_items


def _at(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _log(rows: list[tuple[str, str | None, str, str]]) -> pl.DataFrame:
    return pl.DataFrame([(u, i, _at(d), t) for u, i, d, t in rows], schema=["user_id", "item_id", "timestamp", "event_type"],
                        orient="row")


LOG = _log([
    ("a", "x", "2024-03-04", "view"), ("a", "x", "2024-03-04", "cart"), ("a", "x", "2024-03-12", "purchase"),
    ("b", "y", "2024-03-05", "view"), ("b", None, "2024-03-20", "search"),
    ("c", "x", "2024-03-13", "view"), ("c", "y", "2024-03-13", "view"),
])


def test_funnel_counts_users_and_events_per_type_in_funnel_order():
    table = funnel(LOG)
    assert table["event_type"].to_list() == ["view", "cart", "purchase", "search"]
    assert table["users"].to_list() == [3, 1, 1, 1] and table["events"].to_list() == [4, 1, 1, 1]
    assert table["share_of_users"].to_list() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3], abs=1e-4)


def test_cohorts_are_first_event_weeks_with_the_share_active_each_later_week():
    table = cohort_retention(LOG, max_weeks=3)
    # Week of 4 March: a (back in week 1) and b (back in week 2); week of 11 March: c, never back.
    assert table["cohort"].to_list() == ["2024-03-04", "2024-03-11"] and table["users"].to_list() == [2, 1]
    assert table.row(0, named=True) == {"cohort": "2024-03-04", "users": 2, "week_0": 1.0, "week_1": 0.5,
                                        "week_2": 0.5, "week_3": None}
    # The log ends in the week of 18 March: one week after c's cohort is reached, two are not.
    assert table.row(1)[2:] == (1.0, 0.0, None, None)


def test_rfm_grid_counts_users_per_recency_and_frequency_score():
    profiles = pl.DataFrame({"rfm": ["R5F1M1", "R5F1M3", "R1F5M5"]})
    grid = rfm_grid(profiles)
    assert grid.rows() == [(5, 1, 2, 2.0), (1, 5, 1, 5.0)]


def test_top_items_rank_by_purchases_then_views_with_catalog_columns():
    catalog = pl.DataFrame({"item_id": ["x", "y"], "price": [9.5, 3.0]})
    table = top_items(LOG, catalog, k=5)
    assert table["item_id"].to_list() == ["x", "y"]
    assert table.row(0, named=True) == {"item_id": "x", "users": 2, "views": 2, "carts": 1, "purchases": 1,
                                        "conversion": 0.5, "price": 9.5}


def test_reliability_bins_average_predictions_and_labels_per_bin():
    probs = np.array([0.05, 0.15, 0.12, 0.95, 0.91])
    labels = np.array([0, 1, 0, 1, 1])
    table = reliability_bins(labels, probs, bins=10)
    assert table.rows() == [(0.05, 0.0, 1), (0.135, 0.5, 2), (0.93, 1.0, 2)]

