"""RecBole atomic-file reader: Scientific split rebuilt exactly, plain .inter files, malformed input."""

from __future__ import annotations

import polars as pl
import pytest

from shopformer.data.formats.recbole import read_recbole
from shopformer.errors import DataError
from tests.conftest import dataset_path

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.fixture(scope="module")
def scientific():
    return read_recbole(dataset_path("amazon-scientific"))


def test_real_scientific_published_counts(scientific):
    events = scientific.events
    # Published: 8,442 users, 4,385 items. Interactions: 34,101 train rows + 8,442 first items
    # (each user's earliest history) + one valid and one test target per user.
    assert (events.n_users, events.n_items, len(events)) == (8_442, 4_385, 59_427)
    assert dict(events.frame["split"].value_counts().iter_rows()) == {"train": 42_543, "valid": 8_442, "test": 8_442}
    assert events.time_resolution == "order"


def test_real_scientific_leave_one_out_equals_shipped_split(scientific):
    frame = scientific.events.frame
    last_two = frame.group_by("user_id").agg(pl.col("split").sort_by("timestamp").tail(2))
    assert last_two["split"].list.join(",").unique().to_list() == ["valid,test"]
    positions = frame.group_by("user_id").agg(pl.col("timestamp").sort())
    assert positions["timestamp"].to_list() == [list(range(len(p))) for p in positions["timestamp"].to_list()]


def test_real_scientific_catalog_keyed_by_asin(scientific):
    catalog = scientific.catalog.frame
    assert catalog.height == 4_385
    assert scientific.events.frame["item_id"].is_in(catalog["item_id"].implode()).all()
    assert scientific.events.frame["item_id"].str.contains(r"^[0-9A-Z]{10}$").all()
    assert catalog["title"].null_count() == 0 and catalog["description"].null_count() == 0
    assert catalog["brand"].is_not_null().sum() == 4_373
    mr_heater = catalog.filter(pl.col("title").str.starts_with("Mr. Heater Propane"))
    assert mr_heater["brand"].to_list() == ["Mr. Heater"]
    # "title. . Norton Abrasives - St. Gobain. ": no categories, a '. ' inside the brand.
    wheel = catalog.filter(pl.col("title").str.starts_with("Norton Non-Woven Depressed Center Rapid Strip"))
    assert wheel.select("category", "brand").rows() == [(None, "Norton Abrasives - St. Gobain")]


def write_split(tmp_path, train: str, valid: str, test: str):
    for split, rows in (("train", train), ("valid", valid), ("test", test)):
        (tmp_path / f"Toy.{split}.inter").write_text(HEADER + rows)
    return tmp_path


USER0_TRAIN_ROWS = ["0\t3 4\t5\n", "0\t2 3\t4\n", "0\t1 2\t3\n", "0\t1\t2\n"]


@pytest.mark.parametrize("longest_first", [True, False])
def test_split_rebuild_with_histories_cut_to_two_items(tmp_path, longest_first):
    # User 0 bought 1 2 3 4 5 then 6 (valid) and 7 (test); histories keep their last two items. The
    # shipped files list train rows longest first; the other order must give the same sequence.
    rows = USER0_TRAIN_ROWS if longest_first else USER0_TRAIN_ROWS[::-1]
    root = write_split(tmp_path, "".join(rows) + "1\t8\t9\n",
                       "0\t4 5\t6\n1\t8 9\t10\n", "0\t5 6\t7\n1\t9 10\t8\n")
    frame = read_recbole(root, name="toy").events.frame
    user0 = frame.filter(pl.col("user_id") == "0")
    assert user0["item_id"].to_list() == ["1", "2", "3", "4", "5", "6", "7"]
    assert user0["split"].to_list() == ["train"] * 5 + ["valid", "test"]
    assert frame.filter(pl.col("user_id") == "1")["item_id"].to_list() == ["8", "9", "10", "8"]


def test_split_history_that_disagrees_is_reported(tmp_path):
    root = write_split(tmp_path, "0\t1 2\t3\n0\t1\t2\n", "0\t1 9 3\t4\n", "0\t1 2 3 4\t5\n")
    with pytest.raises(DataError) as caught:
        read_recbole(root)
    assert "Toy.valid.inter" in str(caught.value) and "row 2" in str(caught.value)


def test_plain_inter_with_timestamps_and_ratings(tmp_path):
    (tmp_path / "shop.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ta\t5.0\t1700000100.7\nu1\tb\t3\t1700000000\nu2\ta\t4\t1700000050\n")
    (tmp_path / "shop.text").write_text("item_id:token\ttext:token_seq\na\tRed mug. Kitchen Mugs. Acme. \n")
    data = read_recbole(tmp_path / "shop")
    frame = data.events.frame
    assert frame.select("user_id", "item_id", "timestamp", "rating").rows() == [
        ("u1", "b", 1_700_000_000, 3.0), ("u1", "a", 1_700_000_100, 5.0), ("u2", "a", 1_700_000_050, 4.0)]
    assert data.events.time_resolution == "second"
    assert data.catalog.frame.row(0) == ("a", "Red mug", "Red mug. Kitchen Mugs. Acme", "Kitchen Mugs", "Acme")


@pytest.mark.parametrize(("rows", "row", "expected"), [
    ("u1\ta\t1700000000\nu2\tb\n", 3, "3 tab-separated fields"),
    ("u1\ta\tyesterday\n", 2, "a number"),
])
def test_malformed_line_names_file_and_line(tmp_path, rows, row, expected):
    path = tmp_path / "shop.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n" + rows)
    with pytest.raises(DataError) as caught:
        read_recbole(path.with_suffix(""))
    message = str(caught.value)
    assert str(path) in message and f"row {row}" in message and expected in message


def test_missing_split_file_is_reported(tmp_path):
    (tmp_path / "Toy.train.inter").write_text(HEADER + "0\t1\t2\n")
    with pytest.raises(DataError, match="valid file of the split is missing"):
        read_recbole(tmp_path)
