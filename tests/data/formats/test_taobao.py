"""Taobao multi-behaviour reader: published counts, catalog and user features, malformed input."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from shopformer.data.formats.taobao import read_taobao
from shopformer.errors import DataError
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def taobao():
    root = dataset_path("taobao-multibehavior")
    return read_taobao(root / "ecomm_edge_train.txt", root / "ecomm_user_feature.txt",
                       root / "ecomm_item_feature.txt")


def test_real_taobao_published_counts(taobao):
    events = taobao.events
    assert (len(events), events.n_users, events.n_items) == (85_213, 1_476, 34_505)
    assert events.event_counts() == {"click": 57_917, "cart": 15_066, "purchase": 6_701, "favourite": 5_529}
    assert events.time_resolution == "day"
    days = {datetime.fromtimestamp(t, timezone.utc) for t in events.frame["timestamp"].unique().to_list()}
    assert all(day.hour == day.minute == day.second == 0 for day in days)
    assert {day.date() for day in days} == {date(2019, 6, d) for d in range(10, 20)}


def test_real_taobao_catalog_and_users_cover_events(taobao):
    catalog, users, frame = taobao.catalog.frame, taobao.users, taobao.events.frame
    assert catalog.height == 36_224 and users.height == 1_500
    assert frame["item_id"].is_in(catalog["item_id"].implode()).all()
    assert frame["user_id"].is_in(users["user_id"].implode()).all()
    assert catalog["category"].str.contains(r"^\d+/\d+$").all()
    assert catalog["brand"].is_not_null().sum() == 36_224 - 35_544
    assert users.schema["pred_stage"] == pl.List(pl.Int64)


def test_small_file_event_types_and_days(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("7\t100\t4\t20190611\n7\t101\t1\t20190610\n8\t100\t2\t20190610\n8\t100\t3\t20190610\n")
    frame = read_taobao(path).events.frame
    assert frame.select("user_id", "item_id", "timestamp", "event_type").rows() == [
        ("7", "101", 1_560_124_800, "click"), ("7", "100", 1_560_211_200, "purchase"),
        ("8", "100", 1_560_124_800, "favourite"), ("8", "100", 1_560_124_800, "cart")]


@pytest.mark.parametrize(("content", "row", "column", "found"), [
    ("1\t2\t1\t20190610\n1\t2\t5\t20190610\n", 2, "type", "5"),
    ("1\t2\t1\t20190610\n1\t2\t1\t20190631\n", 2, "date", "20190631"),
    ("1\t2\t1\t20190610\n1 2 1 20190610\n", 2, None, None),
])
def test_malformed_edge_line_names_file_and_line(tmp_path, content, row, column, found):
    path = tmp_path / "edges.txt"
    path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_taobao(path)
    assert str(path) in str(caught.value) and f"row {row}" in str(caught.value)
    assert caught.value.column == column
    assert caught.value.found == (found if found is not None else "1 2 1 20190610")


def test_malformed_item_price(tmp_path):
    (tmp_path / "edges.txt").write_text("1\t2\t1\t20190610\n")
    (tmp_path / "items.txt").write_text("2\t33\t500\t0\tcheap\n")
    with pytest.raises(DataError, match="row 1, column 'price'"):
        read_taobao(tmp_path / "edges.txt", item_features_path=tmp_path / "items.txt")
