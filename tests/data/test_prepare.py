"""Cleaning steps and the label encoder, on tiny logs with hand-computed answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.prepare import (
    ConsecutiveDuplicatesFilter,
    LabelEncoder,
    MinCountFilter,
    Sessionizer,
    is_sorted_by_user_time,
    sort_by_user_time,
)
from shopformer.data.schema import EventLog
from shopformer.errors import DataError


def make_log(rows: list[tuple[str, str, int, str]], time_resolution: str = "second", **extra) -> EventLog:
    users, items, times, events = zip(*rows) if rows else ((), (), (), ())
    frame = pl.DataFrame(
        {"user_id": list(users), "item_id": list(items), "timestamp": list(times), "event_type": list(events)},
        schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "event_type": pl.String},
    ).with_columns(**{name: pl.Series(values, dtype=pl.String) for name, values in extra.items()})
    return EventLog(frame, time_resolution)


def rows_of(log: EventLog, *columns: str) -> list[tuple]:
    return log.frame.select(columns or ["user_id", "item_id", "timestamp"]).rows()


def test_sort_groups_users_and_keeps_input_order_of_ties():
    log = make_log([("b", "x", 5, "view"), ("a", "y", 9, "view"), ("a", "z", 1, "view"),
                    ("b", "w", 5, "cart"), ("a", "v", 9, "cart")])
    ordered = sort_by_user_time(log)
    assert rows_of(ordered) == [("a", "z", 1), ("a", "y", 9), ("a", "v", 9), ("b", "x", 5), ("b", "w", 5)]
    assert is_sorted_by_user_time(ordered) and not is_sorted_by_user_time(log)
    assert sort_by_user_time(ordered) is ordered


def test_dedupe_drops_only_repeats_of_the_same_users_previous_event():
    log = make_log([
        ("a", "x", 1, "view"), ("a", "x", 2, "view"),   # repeat: dropped
        ("a", "x", 3, "cart"),                            # other event type: kept
        ("a", "y", 4, "view"), ("a", "x", 5, "view"),     # not consecutive: kept
        ("b", "x", 6, "view"),                            # other user: kept
        ("b", "x", 0, "view"),                            # earlier in time, so (b,x,6) repeats it
    ])
    dedupe = ConsecutiveDuplicatesFilter()
    kept = dedupe.apply(log)
    assert rows_of(kept) == [("a", "x", 1), ("a", "x", 3), ("a", "y", 4), ("a", "x", 5), ("b", "x", 0)]
    assert dedupe.removed_ == 2


def test_dedupe_on_item_only_ignores_event_type():
    log = make_log([("a", "x", 1, "view"), ("a", "x", 2, "cart"), ("a", "y", 3, "cart")])
    dedupe = ConsecutiveDuplicatesFilter(columns=("item_id",))
    assert rows_of(dedupe.apply(log)) == [("a", "x", 1), ("a", "y", 3)]


def test_dedupe_rejects_an_absent_column():
    with pytest.raises(DataError, match="absent column"):
        ConsecutiveDuplicatesFilter(columns=("query",)).apply(make_log([("a", "x", 1, "view")]))


def test_min_count_needs_several_passes_to_reach_the_core():
    # 2-core for users and items. Pass 1 drops item "r" (1 event); that leaves user "c" with one
    # event, so pass 2 drops "c", which leaves item "z" with one event: pass 3 drops it, and then
    # user "b" has one event: pass 4 drops "b". Users a, d and items x, y form the core.
    log = make_log([
        ("a", "x", 1, "view"), ("a", "y", 2, "view"),
        ("d", "x", 3, "view"), ("d", "y", 4, "view"),
        ("b", "z", 5, "view"), ("b", "y", 6, "view"),
        ("c", "z", 7, "view"), ("c", "r", 8, "view"),
    ])
    kcore = MinCountFilter(min_user_events=2, min_item_events=2)
    kept = kcore.apply(log)
    assert rows_of(kept) == [("a", "x", 1), ("a", "y", 2), ("d", "x", 3), ("d", "y", 4)]
    assert kcore.iterations_ == 4
    assert kcore.removed_ == 4
    # The result is stable: a second application removes nothing.
    again = MinCountFilter(2, 2)
    assert len(again.apply(kept)) == 4 and again.iterations_ == 0


def test_min_count_of_one_keeps_everything():
    log = make_log([("a", "x", 1, "view")])
    kcore = MinCountFilter(1, 1)
    assert len(kcore.apply(log)) == 1 and kcore.removed_ == 0 and kcore.iterations_ == 0


def test_min_count_may_empty_the_log():
    kcore = MinCountFilter(3, 3)
    assert len(kcore.apply(make_log([("a", "x", 1, "view"), ("a", "y", 2, "view")]))) == 0


def test_sessionizer_splits_on_gaps_longer_than_the_threshold():
    log = make_log([
        ("a", "x", 0, "view"), ("a", "x", 100, "view"),   # 100 s: same session
        ("a", "y", 200, "view"),                          # exactly the gap: same session
        ("a", "z", 301, "view"),                          # 101 s > 100 s: new session
        ("b", "x", 50, "view"), ("b", "y", 10_000, "view"),
    ])
    sessionizer = Sessionizer(gap_seconds=100)
    sessions = sessionizer.apply(log).frame["session_id"]
    assert sessions.to_list() == ["a:0", "a:0", "a:0", "a:1", "b:0", "b:1"]
    assert sessionizer.n_sessions_ == 4


def test_sessionizer_overwrites_an_existing_session_column():
    log = make_log([("a", "x", 0, "view"), ("a", "y", 5000, "view")], session_id=["s", "s"])
    assert Sessionizer(1800).apply(log).frame["session_id"].to_list() == ["a:0", "a:1"]


def test_day_resolution_makes_one_session_per_user_day():
    day = 86_400
    log = make_log([("a", "x", 0, "view"), ("a", "y", 0, "view"), ("a", "z", day, "view"),
                    ("a", "w", 3 * day, "view")], time_resolution="day")
    assert Sessionizer(gap_seconds=10 * day).apply(log).frame["session_id"].to_list() == ["a:0", "a:0", "a:1", "a:2"]


def test_order_resolution_keeps_given_sessions_or_makes_one_per_user():
    rows = [("a", "x", 0, "view"), ("a", "y", 1, "view"), ("b", "z", 0, "view")]
    given = make_log(rows, time_resolution="order", session_id=["s1", "s2", "s3"])
    assert Sessionizer().apply(given).frame["session_id"].to_list() == ["s1", "s2", "s3"]
    made = Sessionizer().apply(make_log(rows, time_resolution="order"))
    assert made.frame["session_id"].to_list() == ["a:0", "a:0", "b:0"]


def test_label_encoder_reserves_padding_and_unknown():
    encoder = LabelEncoder().fit(pl.Series(["b", "a", "b", None, "c"]))
    assert encoder.classes_.to_list() == ["a", "b", "c"]
    assert encoder.n_codes == 5
    codes = encoder.transform(["c", "a", "zzz", None])
    assert codes.dtype == np.int32
    assert codes.tolist() == [4, 2, 1, 1]
    assert encoder.inverse_transform([4, 2, 0, 1, 3]).to_list() == ["c", "a", None, None, "b"]
    with pytest.raises(ValueError):
        encoder.inverse_transform([5])


def test_label_encoder_round_trips_ids_and_saves_as_json(tmp_path):
    ids = np.array([f"item-{i}" for i in (5, 3, 9, 3)])
    encoder = LabelEncoder()
    codes = encoder.fit_transform(ids)
    assert encoder.inverse_transform(codes).to_list() == ids.tolist()
    encoder.save(tmp_path / "items.json")
    loaded = LabelEncoder.load(tmp_path / "items.json")
    assert loaded.classes_.equals(encoder.classes_)
    assert loaded.transform(ids).tolist() == codes.tolist()


def test_a_few_ids_and_many_ids_get_the_same_codes():
    encoder = LabelEncoder().fit(pl.Series([f"u{i}" for i in range(1000)] + ["7"]))
    few = ["u3", "nope", None, 7, "u999"]  # a list of at most 256: the dict lookup
    many = pl.Series([str(v) if v is not None else None for v in few * 100])  # a Series: the Polars join
    assert encoder.transform(few).tolist() * 100 == encoder.transform(many).tolist()
    assert encoder.transform(few).dtype == np.int32
    encoder.fit(pl.Series(["u3"]))  # a refit rebuilds the lookup
    assert encoder.transform(["u3", "u999"]).tolist() == [2, 1]


def test_label_encoder_from_classes_keeps_the_given_order():
    encoder = LabelEncoder.from_classes(["view", "cart", "purchase"])
    assert encoder.transform(["purchase", "view"]).tolist() == [4, 2]
    with pytest.raises(DataError):
        LabelEncoder.from_classes(["view", "view"])


def test_loading_something_else_as_an_encoder_fails(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"classes": []}')
    with pytest.raises(DataError, match="label encoder"):
        LabelEncoder.load(path)
