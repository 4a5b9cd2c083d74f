"""YOOCHOOSE click reader: counts of the session-rec prepared files, train/test union, malformed input."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from shopformer.data.formats.yoochoose import read_yoochoose
from shopformer.errors import DataError
from tests.conftest import dataset_path

# file part, clicks, sessions, items
PARTS = [
    ("train_full", 70_278, 17_794, 2_933),
    ("test", 13_568, 3_416, 1_771),
    ("train_tr", 53_254, 13_629, 2_873),
    ("train_valid", 16_539, 4_084, 2_029),
]


def part_path(part: str):
    return dataset_path("yoochoose-clicks-100k") / f"yoochoose-clicks-100k_{part}.txt"


@pytest.mark.parametrize(("part", "clicks", "sessions", "items"), PARTS)
def test_real_file_counts(part, clicks, sessions, items):
    events = read_yoochoose(part_path(part)).events
    assert (len(events), events.n_users, events.n_items) == (clicks, sessions, items)
    assert events.frame["session_id"].n_unique() == sessions


def test_real_train_full_plus_test_is_the_84k_sample():
    # README: "~84k clicks in ~21k sessions" = train_full + test (train_tr + train_valid re-split train_full).
    data = read_yoochoose(part_path("train_full"), test_path=part_path("test"))
    events = data.events
    assert (len(events), data.info["sessions"], events.n_items) == (83_846, 21_210, 2_933)
    assert events.event_counts() == {"click": 83_846} and events.time_resolution == "second"
    days = [datetime.fromtimestamp(t, timezone.utc).date() for t in events.frame["timestamp"].to_list()]
    assert (min(days), max(days)) == (date(2014, 4, 1), date(2014, 4, 8))  # UTC days
    assert dict(events.frame["split"].value_counts().iter_rows()) == {"train": 70_278, "test": 13_568}


def test_small_file_keeps_order_within_a_second(tmp_path):
    path = tmp_path / "clicks.txt"
    path.write_text("SessionId\tItemId\tTime\n5\t9\t100.9\n5\t8\t100.1\n4\t7\t50\n")
    frame = read_yoochoose(path).events.frame
    assert frame.select("user_id", "item_id", "timestamp").rows() == [("4", "7", 50), ("5", "9", 100), ("5", "8", 100)]


@pytest.mark.parametrize(("content", "row", "expected"), [
    ("SessionId\tItemId\tTime\n1\t2\t3.5\n1\t2\tnoon\n", 3, "unix seconds"),
    ("SessionId\tItemId\tTime\n1\t2\t3.5\n1\t2\n", 3, "3 tab-separated fields"),
    ("Session\tItem\tTime\n1\t2\t3\n", 1, "SessionId<TAB>ItemId<TAB>Time"),
])
def test_malformed_line_names_file_and_line(tmp_path, content, row, expected):
    path = tmp_path / "clicks.txt"
    path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_yoochoose(path)
    message = str(caught.value)
    assert str(path) in message and f"row {row}" in message and expected in message


def test_test_sessions_must_not_be_in_train(tmp_path):
    (tmp_path / "train.txt").write_text("SessionId\tItemId\tTime\n1\t2\t3\n")
    (tmp_path / "test.txt").write_text("SessionId\tItemId\tTime\n2\t2\t3\n1\t2\t4\n")
    with pytest.raises(DataError, match="row 3.*also in the training file"):
        read_yoochoose(tmp_path / "train.txt", test_path=tmp_path / "test.txt")
