"""Session-list reader: published Diginetica/Tmall counts, test targets last, malformed input."""

from __future__ import annotations

import polars as pl
import pytest

from shopformer.data.formats.sessions import read_session_lists
from shopformer.errors import DataError
from tests.conftest import dataset_path

# folder, train sessions, test cases, items (over train alone; the test files add no new item)
PUBLISHED = [("diginetica", 186_670, 60_858, 43_097), ("tmall", 65_286, 25_898, 40_727)]


@pytest.mark.parametrize(("folder", "train_sessions", "test_cases", "items"), PUBLISHED)
def test_real_session_benchmarks_published_counts(folder, train_sessions, test_cases, items):
    root = dataset_path(folder)
    data = read_session_lists(root / "train_sessions.txt", root / "test_prefix_target.txt")
    frame = data.events.frame
    train, test = frame.filter(pl.col("split") == "train"), frame.filter(pl.col("split") == "test")
    assert train["session_id"].n_unique() == data.info["train_sessions"] == train_sessions
    assert test["session_id"].n_unique() == data.info["test_cases"] == test_cases
    assert train["item_id"].n_unique() == data.events.n_items == items
    assert frame["user_id"].equals(frame["session_id"])
    assert data.events.time_resolution == "order" and data.events.event_counts().keys() == {"click"}


def test_real_diginetica_test_target_is_last_event():
    root = dataset_path("diginetica")
    frame = read_session_lists(root / "train_sessions.txt", root / "test_prefix_target.txt").events.frame
    # First test line: "21553 20071 8762 21566 6381<TAB>21566".
    first = frame.filter(pl.col("session_id") == "test-1")
    assert first["item_id"].to_list() == ["21553", "20071", "8762", "21566", "6381", "21566"]
    assert first["timestamp"].to_list() == list(range(6))


def test_small_files_sessions_and_split(tmp_path):
    (tmp_path / "train.txt").write_text("1 2\n3 4 5\n")
    (tmp_path / "test.txt").write_text("1 3\t5\n")
    data = read_session_lists(tmp_path / "train.txt", tmp_path / "test.txt", name="toy")
    rows = data.events.frame.select("session_id", "item_id", "timestamp", "split").rows()
    assert rows == [("test-1", "1", 0, "test"), ("test-1", "3", 1, "test"), ("test-1", "5", 2, "test"),
                    ("train-1", "1", 0, "train"), ("train-1", "2", 1, "train"),
                    ("train-2", "3", 0, "train"), ("train-2", "4", 1, "train"), ("train-2", "5", 2, "train")]


def test_train_only(tmp_path):
    (tmp_path / "train.txt").write_text("1 2\n")
    data = read_session_lists(tmp_path / "train.txt")
    assert data.info["test_cases"] == 0 and len(data.events) == 2


@pytest.mark.parametrize(("train", "test", "bad_file", "row", "expected"), [
    ("1 2\n3 x\n", "1\t2\n", "train.txt", 2, "non-negative integer id"),
    ("1 2\n", "1 2\t3\n4 5 6\n", "test.txt", 2, "prefix item ids<TAB>target item id"),
    ("1 2\n", "1 2\t3 4\n", "test.txt", 1, "one target item id"),
    ("1 2\n", "\t3\n", "test.txt", 1, "lacks its prefix"),
])
def test_malformed_line_names_file_and_line(tmp_path, train, test, bad_file, row, expected):
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "test.txt").write_text(test)
    with pytest.raises(DataError) as caught:
        read_session_lists(tmp_path / "train.txt", tmp_path / "test.txt")
    message = str(caught.value)
    assert str(tmp_path / bad_file) in message and f"row {row}" in message and expected in message
