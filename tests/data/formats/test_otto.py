"""OTTO session reader: counts of the official sample, the mapping, quarantined malformed lines."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone

import pytest

from shopformer.data.formats import read_dataset
from shopformer.data.formats.otto import read_otto
from shopformer.errors import DataError
from tests.conftest import dataset_path


def test_real_sample_counts():
    data = read_dataset("otto", dataset_path("otto-sample") / "train.jsonl")
    events = data.events
    assert (len(events), events.n_users, events.n_items) == (862, 20, 510)
    assert events.event_counts() == {"view": 800, "cart": 52, "purchase": 10}
    assert events.time_resolution == "second" and data.info["quarantine"] == {"accepted": 20}
    assert events.frame["session_id"].to_list() == events.frame["user_id"].to_list()
    days = [datetime.fromtimestamp(t, timezone.utc).date() for t in events.frame["timestamp"].to_list()]
    assert (min(days), max(days)) == (date(2022, 7, 31), date(2022, 8, 28))
    first = events.frame.filter(events.frame["user_id"] == "0").head(2)
    assert first.select("item_id", "timestamp", "event_type").rows() == [("1517085", 1659304800, "view"),
                                                                         ("1563459", 1659304904, "view")]


def _session(session, *events) -> str:
    return json.dumps({"session": session, "events": [{"aid": a, "ts": ts, "type": t} for a, ts, t in events]})


BAD_LINES = [
    ('{"session": 3, "events": [', "not_json", "not valid JSON"),
    ("[1, 2]", "not_a_session", "not a session object"),
    ('{"session": "x", "events": []}', "bad_session", "not a non-negative integer"),
    ('{"session": 4, "events": []}', "no_events", "not a non-empty list"),
    (_session(5, (1, 1000, "clicks"), (2, "noon", "clicks")), "bad_event", "event 2 has ts 'noon'"),
    (_session(6, (1, 1000, "views")), "bad_event", "not one of clicks, carts, orders"),
    (_session(7, (True, 1000, "clicks")), "bad_event", "event 1 has aid True"),
    (_session(1, (9, 9000, "clicks")), "duplicate_session", "already on an earlier line"),
]


def test_small_file_maps_types_and_quarantines_bad_lines(tmp_path, caplog):
    good = [_session(1, (10, 1_659_304_800_900, "clicks"), (11, 1_659_304_800_100, "carts"),
                     (11, 1_659_304_860_000, "orders")),
            _session(2, (12, 1_659_304_900_000, "clicks"))]
    path = tmp_path / "sessions.jsonl"
    path.write_text("\n".join([good[0], *(line for line, _, _ in BAD_LINES), "", good[1]]) + "\n")
    with caplog.at_level(logging.WARNING):
        data = read_otto(path)
    frame = data.events.frame
    # Within one second the file's order is kept; milliseconds are cut to seconds.
    assert frame.select("user_id", "item_id", "timestamp", "event_type").rows() == [
        ("1", "10", 1_659_304_800, "view"), ("1", "11", 1_659_304_800, "cart"), ("1", "11", 1_659_304_860, "purchase"),
        ("2", "12", 1_659_304_900, "view")]
    lines = data.info["quarantined_lines"]
    assert [entry["line"] for entry in lines] == list(range(2, 2 + len(BAD_LINES)))  # the blank line keeps its number
    for entry, (_, reason, detail) in zip(lines, BAD_LINES, strict=True):
        assert entry["reason"] == reason and detail in entry["detail"], entry
    assert data.info["quarantine"] == {"accepted": 2, "not_json": 1, "not_a_session": 1, "bad_session": 1,
                                       "no_events": 1, "bad_event": 3, "duplicate_session": 1}
    assert "8 of 10 lines quarantined, the first at line 2" in caplog.text


@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty"),
    ("not json\n", "row 1"),
])
def test_a_file_without_good_lines_is_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "sessions.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_otto(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)
