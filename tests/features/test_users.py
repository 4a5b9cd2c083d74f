"""Hand-crafted features against hand-computed values on a tiny log."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from shopformer.data.schema import Catalog, EventLog
from shopformer.features.users import NEVER_DAYS
from shopformer.tasks.base import TaskContext, TaskExamples, example_features

DAY = 86_400
T0 = 1_700_000_000


@pytest.fixture()
def context():
    rows = [  # user a: two sessions; user b: one view
        ("a", "x", T0, "view"), ("a", "x", T0 + 60, "cart"), ("a", "x", T0 + 120, "purchase"),
        ("a", "y", T0 + 3 * DAY, "view"), ("a", "z", T0 + 3 * DAY + 30, "view"), ("a", "z", T0 + 3 * DAY + 90, "cart"),
        ("b", "y", T0 + DAY, "view"),
    ]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event_type"], orient="row")
    frame = frame.with_columns(session_id=pl.when(pl.col("timestamp") < T0 + DAY).then(pl.lit("s1")).otherwise(pl.lit("s2")))
    catalog = Catalog(pl.DataFrame({"item_id": ["x", "y", "z"], "price": [9.0, 99.0, 19.0], "category": ["c1", "c2", "c2"]}))
    return TaskContext.from_log(EventLog(frame), catalog, fit_until=T0 + 10 * DAY)


def _examples(rows, item=None) -> TaskExamples:
    frame = pl.DataFrame(rows, schema=["example_id", "user_id", "history_end", "cutoff"], orient="row")
    frame = frame.with_columns(label=pl.lit(0, pl.Int64), split=pl.lit("test"))
    if item is not None:
        frame = frame.with_columns(item_id=pl.Series(item))
    return TaskExamples("propensity", frame)


def _as_dict(table, row: int) -> dict[str, float]:
    return dict(zip(table.names, table.values[row].tolist()))


def test_rfm_funnel_and_session_features(context):
    cutoff = T0 + 4 * DAY
    table = example_features(context, _examples([(0, "a", 6, cutoff), (1, "a", 3, T0 + 200), (2, "b", 1, cutoff)]))
    a = _as_dict(table, 0)
    assert (a["n_events"], a["n_sessions"], a["n_items"], a["n_view"], a["n_cart"], a["n_purchase"]) == (6, 2, 3, 3, 2, 1)
    assert a["recency_days"] == pytest.approx((cutoff - T0 - 3 * DAY - 90) / DAY, rel=1e-5)
    assert a["tenure_days"] == pytest.approx(4.0, rel=1e-5)
    assert a["recency_purchase_days"] == pytest.approx((cutoff - T0 - 120) / DAY, rel=1e-5)
    assert a["monetary"] == 9.0 and a["events_since_purchase"] == 3
    assert (a["session_length"], a["session_items"], a["session_n_cart"], a["session_dwell_seconds"]) == (3, 2, 1, 90)
    assert a["session_mean_gap_seconds"] == 45
    assert a["cart_per_view"] == pytest.approx(2 / 4)
    assert a["n_events_1d"] == 2 and a["n_view_7d"] == 3  # the view exactly one day before is not within 1d
    assert a["last_is_cart"] == 1 and a["last_is_view"] == 0
    # Categories met: c1 three times, c2 three times.
    assert a["category_entropy"] == pytest.approx(math.log(2), rel=1e-5)
    early = _as_dict(table, 1)
    assert (early["n_events"], early["n_purchase"], early["monetary"]) == (3, 1, 9.0)
    b = _as_dict(table, 2)
    assert b["recency_purchase_days"] == NEVER_DAYS and b["n_view"] == 1 and b["category_entropy"] == 0


def test_candidate_item_features(context):
    table = example_features(context, _examples([(0, "a", 6, T0 + 4 * DAY), (1, "a", 6, T0 + 4 * DAY)], item=["z", "x"]))
    z, x = _as_dict(table, 0), _as_dict(table, 1)
    assert (z["item_events"], z["item_n_cart"], z["item_n_view"], z["item_session_events"], z["item_events_since"]) == (2, 1, 1, 2, 0)
    assert (x["item_events"], x["item_n_purchase"], x["item_events_since"]) == (3, 1, 3)
    assert z["item_log_price"] == pytest.approx(math.log1p(19.0), rel=1e-5)
    assert table.values.dtype == np.float32 and np.isfinite(table.values).all()


def test_columns_do_not_depend_on_the_log(context):
    first = example_features(context, _examples([(0, "a", 6, T0 + 4 * DAY)]))
    other = example_features(context, _examples([(0, "b", 1, T0 + 4 * DAY)]))
    assert first.names == other.names and "n_review" in first.names
