"""The UCI Online Retail sample: quarantine counts checked against an independent count of the raw CSV."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from shopformer.data.formats.online_retail import read_online_retail
from tests.conftest import dataset_path

ROWS = 7_507


@pytest.fixture(scope="module")
def csv_path():
    path = dataset_path("online-retail-sample") / "Online_Retail.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def raw(csv_path):
    """The file as plain polars reads it, every value a string (empty fields are null)."""
    return pl.read_csv(csv_path, infer_schema=False)


@pytest.fixture(scope="module")
def retail(csv_path):
    return read_online_retail(csv_path)


def expected_counts(raw: pl.DataFrame) -> dict[str, int]:
    no_customer = pl.col("CustomerID").is_null() | (pl.col("CustomerID").str.strip_chars() == "")
    negative = pl.col("Quantity").cast(pl.Int64) < 0
    missing = raw.filter(no_customer).height
    cancelled = raw.filter(~no_customer & negative).height
    return {"accepted": raw.height - missing - cancelled, "missing_user_id": missing, "negative_quantity": cancelled}


def test_sample_is_the_expected_file(raw):
    assert raw.height == ROWS
    assert raw.columns == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                           "CustomerID", "Country"]


def test_quarantine_counts_match_an_independent_count(retail, raw):
    expected = expected_counts(raw)
    # Sanity of the independent count itself: the sample does have both kinds of bad rows.
    assert expected["missing_user_id"] > 0 and expected["negative_quantity"] > 0
    assert retail.info["quarantine"] == expected
    assert len(retail.events) == expected["accepted"]


def test_every_row_is_accounted_for(retail):
    quarantine = retail.info["quarantine"]
    assert retail.info["rows_read"] == ROWS
    assert sum(quarantine.values()) == ROWS
    assert quarantine["accepted"] == len(retail.events)


def test_events_are_purchases_by_customers(retail, raw):
    frame = retail.events.frame
    assert frame["event_type"].unique().to_list() == ["purchase"]
    assert frame["user_id"].null_count() == 0 and frame["item_id"].null_count() == 0
    assert (frame["quantity"] >= 0).all()
    customers = set(raw["CustomerID"].drop_nulls().to_list())
    assert set(frame["user_id"].unique().to_list()) <= customers
    assert frame["session_id"].is_in(raw["InvoiceNo"].implode()).all()


def test_events_are_sorted_and_within_the_sample_dates(retail):
    frame = retail.events.frame
    assert frame.equals(frame.sort("user_id", "timestamp", maintain_order=True))
    assert frame.schema["timestamp"] == pl.Int64
    # The sample covers invoices of 2010-12-01 .. 2010-12-05 (times read as UTC).
    start = int(datetime(2010, 12, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(2010, 12, 6, tzinfo=timezone.utc).timestamp())
    assert frame["timestamp"].min() >= start and frame["timestamp"].max() < end
    # The very first line: 536365, 85123A, ..., 12/1/10 8:26, customer 17850.
    first = frame.filter((pl.col("user_id") == "17850") & (pl.col("item_id") == "85123A"))
    assert first["timestamp"].min() == int(datetime(2010, 12, 1, 8, 26, tzinfo=timezone.utc).timestamp())


def test_catalog_covers_every_event_item(retail, raw):
    catalog = retail.catalog.frame
    assert catalog["item_id"].n_unique() == catalog.height
    assert retail.events.frame["item_id"].is_in(catalog["item_id"].implode()).all()
    assert set(catalog["item_id"].to_list()) <= set(raw["StockCode"].drop_nulls().to_list())
    assert catalog.schema["price"] == pl.Float64
    heart = catalog.filter(pl.col("item_id") == "85123A").row(0, named=True)
    text = [heart.get(c) for c in ("title", "description")]
    assert "WHITE HANGING HEART T-LIGHT HOLDER" in text
    assert 2.55 <= heart["price"] <= 2.95  # its unit prices in the sample
