"""Splitters: exact rows on tiny logs, and the published leave-one-out counts on Amazon Beauty."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from shopformer.data.schema import EventLog
from shopformer.data.splits import LastNSplit, LeaveOneOut, PredefinedSplit, TimeSplit
from shopformer.errors import DataError
from tests.conftest import dataset_path
from tests.data.test_prepare import make_log


def rows(log: EventLog | None) -> list[tuple[str, str]]:
    return log.frame.select("user_id", "item_id").rows()


def interleaved_log() -> EventLog:
    # Users interleaved and one user out of time order: splits must not depend on row order.
    return make_log([
        ("a", "a1", 1, "view"), ("b", "b1", 1, "view"), ("a", "a2", 2, "view"),
        ("c", "c1", 1, "view"), ("a", "a4", 4, "view"), ("b", "b2", 2, "view"),
        ("a", "a3", 3, "view"), ("c", "c2", 2, "view"), ("b", "b3", 3, "view"),
    ])


def test_leave_one_out_takes_the_last_two_events_per_user_and_keeps_row_order():
    split = LeaveOneOut().split(interleaved_log())
    # a: a4 is latest, a3 second latest (though a3 comes after a4 in the file).
    assert rows(split.test) == [("a", "a4"), ("b", "b3")]
    assert rows(split.valid) == [("b", "b2"), ("a", "a3")]
    # c has only 2 events: all in train, never evaluated.
    assert rows(split.train) == [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("c", "c2")]
    assert split.sizes() == {"train": 5, "valid": 2, "test": 2}
    assert split.train.frame.schema == interleaved_log().frame.schema


def test_leave_one_out_breaks_timestamp_ties_by_row_order():
    split = LeaveOneOut().split(make_log([("a", "x", 1, "view"), ("a", "y", 5, "view"), ("a", "z", 5, "view")]))
    assert rows(split.test) == [("a", "z")] and rows(split.valid) == [("a", "y")]


def test_last_n_without_validation():
    split = LastNSplit(n=2).split(interleaved_log())
    assert split.valid is None
    assert rows(split.test) == [("a", "a4"), ("b", "b2"), ("a", "a3"), ("b", "b3")]
    assert rows(split.train) == [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("c", "c2")]


def test_last_n_rejects_nonsense():
    with pytest.raises(ValueError):
        LastNSplit(n=0)


def timed_log() -> EventLog:
    return make_log([
        ("a", "a1", 10, "view"), ("a", "a2", 20, "view"), ("a", "a3", 30, "view"),
        ("b", "b1", 25, "view"),                          # first seen in validation time
        ("c", "c1", 35, "view"),                          # first seen in test time
        ("d", "d1", 15, "view"), ("d", "d2", 32, "view"),
    ])


def test_time_split_with_history_requirement():
    split = TimeSplit(test_start=30, valid_start=20).split(timed_log())
    assert rows(split.train) == [("a", "a1"), ("d", "d1")]
    assert rows(split.valid) == [("a", "a2")]              # b has no train history: dropped
    assert rows(split.test) == [("a", "a3"), ("d", "d2")]  # c is new at test time: dropped


def test_time_split_without_history_requirement_and_without_validation():
    split = TimeSplit(test_start=30, require_history=False).split(timed_log())
    assert split.valid is None
    assert rows(split.train) == [("a", "a1"), ("a", "a2"), ("b", "b1"), ("d", "d1")]
    assert rows(split.test) == [("a", "a3"), ("c", "c1"), ("d", "d2")]


def test_time_split_accepts_datetimes():
    start = 1_700_000_000
    log = make_log([("a", "x", start - 10, "view"), ("a", "y", start + 10, "view")])
    cut = datetime.fromtimestamp(start, tz=timezone.utc)
    assert rows(TimeSplit(cut).split(log).test) == [("a", "y")]
    assert rows(TimeSplit(cut.replace(tzinfo=None)).split(log).test) == [("a", "y")]


def test_time_split_refuses_order_only_logs():
    with pytest.raises(DataError, match="real timestamps"):
        TimeSplit(5).split(make_log([("a", "x", 1, "view")], time_resolution="order"))


def test_predefined_split_follows_the_split_column():
    log = make_log([("a", "x", 1, "view"), ("a", "y", 2, "view"), ("b", "z", 1, "view")],
                   split=["train", "test", "validation"])
    split = PredefinedSplit().split(log)
    assert rows(split.train) == [("a", "x")]
    assert rows(split.valid) == [("b", "z")]
    assert rows(split.test) == [("a", "y")]
    assert "split" in split.test.frame.columns


def test_predefined_split_rejects_unknown_values_and_missing_column():
    with pytest.raises(DataError, match="unknown split value"):
        PredefinedSplit().split(make_log([("a", "x", 1, "view")], split=["holdout"]))
    with pytest.raises(DataError, match="no 'split' column"):
        PredefinedSplit().split(make_log([("a", "x", 1, "view")]))


def beauty_log() -> EventLog:
    """Amazon Beauty (S3-Rec release): one line per user, `uid item item …` in time order."""
    path = dataset_path("amazon-beauty") / "Beauty.txt"
    lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\t")["line"]
    tokens = lines.str.split(" ")
    frame = pl.DataFrame({"user_id": tokens.list.first(), "item_id": tokens.list.slice(1)}).explode("item_id")
    frame = frame.with_columns(
        timestamp=pl.int_range(pl.len(), dtype=pl.Int64).over("user_id"), event_type=pl.lit("purchase")
    )
    return EventLog(frame.select("user_id", "item_id", "timestamp", "event_type"), time_resolution="order")


def test_leave_one_out_on_amazon_beauty_matches_the_published_counts():
    log = beauty_log()
    assert (len(log), log.n_users, log.n_items) == (198_502, 22_363, 12_101)
    split = LeaveOneOut().split(log)
    assert split.sizes() == {"train": 198_502 - 2 * 22_363, "valid": 22_363, "test": 22_363}
    # The test target is each user's last listed item.
    first_line = (dataset_path("amazon-beauty") / "Beauty.txt").read_text().split("\n", 1)[0].split()
    user_test = split.test.frame.filter(pl.col("user_id") == first_line[0])
    assert user_test["item_id"].to_list() == [first_line[-1]]
