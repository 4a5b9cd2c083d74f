"""S3-Rec sequence reader: published counts on Amazon Beauty/Sports, catalog joins, malformed input."""

from __future__ import annotations

import json

import polars as pl
import pytest

from shopformer.data.formats.s3rec import read_s3rec
from shopformer.errors import ConfigError, DataError
from tests.conftest import dataset_path

# folder, file stem, users, items, interactions, items with a title (one Beauty line has no words)
PUBLISHED = [
    ("amazon-beauty", "Beauty", 22_363, 12_101, 198_502, 12_100),
    ("amazon-sports", "Sports_and_Outdoors", 35_598, 18_357, 296_337, 18_357),
]


def read_real(folder: str, stem: str):
    root = dataset_path(folder)
    return read_s3rec(root / f"{stem}.txt", root / f"{stem}_item2attributes.json", root / "datamaps.json",
                      root / "item_title_prefix.txt")


@pytest.mark.parametrize(("folder", "stem", "users", "items", "interactions", "titled"), PUBLISHED)
def test_real_amazon_counts_and_catalog(folder, stem, users, items, interactions, titled):
    data = read_real(folder, stem)
    events, catalog = data.events, data.catalog.frame
    assert (events.n_users, events.n_items, len(events)) == (users, items, interactions)
    assert events.event_counts() == {"purchase": interactions}
    assert events.time_resolution == "order"
    assert catalog.height == items
    assert events.frame["item_id"].is_in(catalog["item_id"].implode()).all()
    assert catalog["asin"].null_count() == 0
    assert catalog["attributes"].null_count() == 0
    assert data.info["items_with_title"] == titled == catalog["title"].is_not_null().sum()


def test_real_beauty_attribute_names_are_unescaped():
    catalog = read_real("amazon-beauty", "Beauty").catalog.frame
    names = catalog["attributes"].explode()
    assert (names == "Crabtree & Evelyn").any()
    assert not names.str.contains("&amp;").any()


def write_small(tmp_path):
    (tmp_path / "Toy.txt").write_text("1 10 11 10\n2 11 12\n")
    (tmp_path / "Toy_item2attributes.json").write_text(json.dumps({"10": [1, 2], "11": [2], "12": [3]}))
    datamaps = {
        "id2item": {"10": "B010", "11": "B011", "12": "B012"},
        "id2attribute": {"1": "Acme &amp; Co", "2": "Makeup", "3": ""},
    }
    (tmp_path / "datamaps.json").write_text(json.dumps(datamaps))
    (tmp_path / "titles.txt").write_text("B010 red lipstick\nB012 nail file\n")
    return tmp_path


def test_small_file_positions_and_catalog(tmp_path):
    root = write_small(tmp_path)
    data = read_s3rec(root / "Toy.txt", root / "Toy_item2attributes.json", root / "datamaps.json",
                      root / "titles.txt", name="toy")
    assert data.events.frame.select("user_id", "item_id", "timestamp").rows() == [
        ("1", "10", 0), ("1", "11", 1), ("1", "10", 2), ("2", "11", 0), ("2", "12", 1)]
    catalog = data.catalog.frame
    assert catalog["asin"].to_list() == ["B010", "B011", "B012"]
    assert catalog["attributes"].to_list() == [["Acme & Co", "Makeup"], ["Makeup"], []]
    assert catalog["title"].to_list() == ["red lipstick", None, "nail file"]


def test_titles_need_datamaps(tmp_path):
    root = write_small(tmp_path)
    with pytest.raises(ConfigError, match="datamaps"):
        read_s3rec(root / "Toy.txt", item_titles_path=root / "titles.txt")


@pytest.mark.parametrize(("content", "row", "what"), [
    ("1 10 11\n2 11 x1\n", 2, "not an integer"),
    ("1 10\n\n2\n", 3, "no items"),
    ("1 10\n1 11\n", 2, "earlier line"),
])
def test_malformed_line_names_file_and_line(tmp_path, content, row, what):
    path = tmp_path / "Bad.txt"
    path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_s3rec(path)
    message = str(caught.value)
    assert str(path) in message and f"row {row}" in message
    assert caught.value.row == row
    if what == "not an integer":
        assert "non-negative integer id" in message and "x1" in message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_s3rec(tmp_path / "absent.txt")


def test_events_sorted_by_user_then_time(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("2 5 6\n1 7 8 9\n")
    frame = read_s3rec(path).events.frame
    assert frame.equals(frame.sort(["user_id", "timestamp"]))
    assert frame.schema["timestamp"] == pl.Int64
