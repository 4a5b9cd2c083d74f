"""The data summary: exact figures on a hand-built log, presentation, and the demo shop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.image import imread
from rich.console import Console

from shopformer.data.schema import Catalog, EventLog
from shopformer.data.summary import DataSummary, Distribution, summarize
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import DataError
from tests.data.synth.test_shop import clean_event_log

DAY = 86_400
T0 = 1_699_920_000  # a midnight, UTC


def tiny_log(**overrides) -> EventLog:
    """Three users, four sessions, nine events (one search without an item)."""
    rows = [
        ("u1", "A", T0, "view", "s1"),
        ("u1", "B", T0 + 10, "view", "s1"),
        ("u1", "B", T0 + 20, "cart", "s1"),
        ("u1", "B", T0 + 30, "purchase", "s1"),
        ("u2", "C", T0 + DAY, "view", "s3"),
        ("u2", "C", T0 + DAY + 10, "cart", "s3"),
        ("u3", "A", T0 + DAY + 100, "view", "s4"),
        ("u1", "A", T0 + 2 * DAY, "view", "s2"),
        ("u1", None, T0 + 2 * DAY + 5, "search", "s2"),
    ]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event_type", "session_id"], orient="row")
    return EventLog(frame.with_columns(**overrides))


@pytest.fixture
def summary() -> DataSummary:
    catalog = Catalog(pl.DataFrame({"item_id": ["A", "B", "D"]}))
    return summarize(tiny_log(), catalog)


def test_sizes_and_sparsity(summary: DataSummary) -> None:
    assert (summary.n_users, summary.n_items, summary.n_events, summary.n_sessions) == (3, 3, 9, 4)
    assert summary.events_per_type == {"view": 5, "cart": 2, "purchase": 1, "search": 1}
    # Pairs (u1,A) (u1,B) (u2,C) (u3,A) out of 3 x 3.
    assert summary.sparsity == pytest.approx(1 - 4 / 9)


def test_distributions(summary: DataSummary) -> None:
    # Session lengths 4, 2, 2, 1; events per user 6, 2, 1; p90 interpolates linearly.
    assert summary.session_length == Distribution(mean=2.25, median=2.0, p90=pytest.approx(3.4), max=4)
    assert summary.events_per_user == Distribution(mean=3.0, median=2.0, p90=pytest.approx(5.2), max=6)
    assert summary.session_length_counts == [(1, 1), (2, 2), (4, 1)]
    assert summary.user_activity_counts == [(1, 1), (2, 1), (6, 1)]


def test_time_and_daily_activity(summary: DataSummary) -> None:
    assert (summary.first_timestamp, summary.last_timestamp) == (T0, T0 + 2 * DAY + 5)
    assert summary.time_span_days == pytest.approx(2 + 5 / DAY)
    assert summary.daily_events == [(T0, 4), (T0 + DAY, 3), (T0 + 2 * DAY, 2)]


def test_funnel(summary: DataSummary) -> None:
    assert summary.conversion_rate == 0.25  # s1 of s1..s4
    assert summary.view_to_cart == 0.5  # all four sessions view; s1 and s3 cart
    assert summary.cart_to_purchase == 0.5  # of s1 and s3, s1 buys


def test_catalog_coverage(summary: DataSummary) -> None:
    assert summary.catalog_items == 3
    assert summary.catalog_coverage == pytest.approx(2 / 3)  # A, B of A, B, D have events
    assert summary.items_in_catalog == pytest.approx(2 / 3)  # A, B of A, B, C are described
    assert summarize(tiny_log()).catalog_coverage is None


def test_missing_event_types_give_no_rates() -> None:
    only_views = summarize(tiny_log(event_type=pl.lit("view")))
    assert (only_views.conversion_rate, only_views.view_to_cart, only_views.cart_to_purchase) == (None, None, None)


def test_same_session_id_for_two_users_counts_twice() -> None:
    assert summarize(tiny_log(session_id=pl.lit("1"))).n_sessions == 3


def test_days_without_events_are_zeros() -> None:
    later = summarize(tiny_log(timestamp=pl.col("timestamp") + pl.when(pl.col("user_id") == "u3").then(3 * DAY)
                               .otherwise(0)))
    assert [n for _, n in later.daily_events] == [4, 2, 2, 0, 1]


def test_order_only_logs_have_no_time_span(tmp_path: Path) -> None:
    ordered = summarize(EventLog(tiny_log().frame, time_resolution="order"))
    assert ordered.time_span_days is None and ordered.daily_events == []
    assert "first_time" not in ordered.to_dict()
    ordered.plot(tmp_path / "ordered.png")
    assert (tmp_path / "ordered.png").stat().st_size > 10_000


def test_needs_sessions_and_events() -> None:
    with pytest.raises(DataError, match="session_id"):
        summarize(EventLog(tiny_log().frame.drop("session_id")))
    with pytest.raises(DataError, match="empty"):
        summarize(EventLog(tiny_log().frame.clear()))


def test_to_dict_is_json(summary: DataSummary) -> None:
    figures = json.loads(json.dumps(summary.to_dict(include_series=True)))
    assert figures["n_events"] == 9
    assert figures["session_length"]["p90"] == pytest.approx(3.4)
    assert figures["first_time"] == "2023-11-14T00:00:00Z"
    assert figures["series"]["daily_events"][0] == [T0, 4]
    assert "series" not in summary.to_dict()


def test_render_prints_tables(summary: DataSummary) -> None:
    console = Console(record=True, width=120)
    summary.render(console)
    text = console.export_text()
    for expected in ("Events per type", "purchase", "25.0%", "events per session", "catalog items with events"):
        assert expected in text


def test_plot_writes_a_four_panel_png(summary: DataSummary, tmp_path: Path) -> None:
    path = summary.plot(tmp_path / "plots" / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[:2] == (800, 1200)
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50  # not a blank canvas


def test_summary_of_the_demo_shop(tmp_path: Path) -> None:
    files = generate_demo_shop(tmp_path, DemoShopConfig(n_users=300, n_items=80, days=21))
    meta = json.loads(files.meta.read_text())
    sessions = pl.read_csv(files.sessions)
    summary = summarize(clean_event_log(files), Catalog(pl.read_csv(files.catalog)))
    assert summary.n_events == meta["counts"]["events"]
    assert summary.n_sessions == meta["counts"]["sessions"]
    assert summary.n_users == meta["counts"]["active_users"]
    assert summary.conversion_rate == pytest.approx(sessions["purchased"].mean())
    assert summary.events_per_type["purchase"] == meta["counts"]["events_by_type"]["purchase"]
    assert summary.time_span_days <= 21 and len(summary.daily_events) == 21
    summary.plot(tmp_path / "demo.png")
