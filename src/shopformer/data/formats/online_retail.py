"""The UCI Online Retail transactions CSV (invoice lines of a UK online shop) as a `Dataset`.

Each invoice line is a purchase by `CustomerID` of `StockCode`; the invoice is the session.
Cancellations (negative quantities) and lines without a customer are quarantined by the usual
validation, and their counts are kept in `Dataset.info["quarantine"]`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopformer.data.io import read_table
from shopformer.data.mapping import EventMapping
from shopformer.data.schema import Catalog, Dataset
from shopformer.data.validate import validate_events

ONLINE_RETAIL_MAPPING = EventMapping(
    user_col="CustomerID", item_col="StockCode", time_col="InvoiceDate", event_col=None,
    default_event="purchase", session_col="InvoiceNo", quantity_col="Quantity", value_col="UnitPrice",
    time_format="%m/%d/%y %H:%M",
)


def _catalog(raw: pl.DataFrame) -> Catalog:
    items = (
        raw.filter(pl.col("StockCode").is_not_null())
        .group_by("StockCode", maintain_order=True)
        .agg(pl.col("Description").drop_nulls().first().alias("title"),
             pl.col("UnitPrice").cast(pl.Float64, strict=False).median().alias("price"))
        .rename({"StockCode": "item_id"})
    )
    return Catalog(items)


def read_online_retail(path: str | Path, name: str | None = None) -> Dataset:
    """Read the Online Retail CSV: events (purchases), catalog (stock code, description, price)."""
    raw = read_table(path)
    result = validate_events(raw, ONLINE_RETAIL_MAPPING)
    info = {
        "format": "online-retail", "events_path": str(path),
        "quarantine": result.counts(),
        "rows_read": result.rows_read,
    }
    return Dataset(name or Path(path).stem, result.events, _catalog(raw.frame), info=info)
