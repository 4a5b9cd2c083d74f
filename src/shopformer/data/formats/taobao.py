"""Reader for the Taobao multi-behaviour edge files (Tianchi CIKM 2019 EComm AI sample, as in DyHATR).

Files (tab separated, no header):
- edges: `user item type yyyymmdd`, type 1 click, 2 favourite ("collect"), 3 cart, 4 purchase;
- item features (optional): `item cate_1 cate brand price`;
- user features (optional): `user pred_gender pred_age_level pred_education_degree pred_career_type
  predict_income pred_stage`, the last a comma list of stages.

Dates are days: `timestamp` is midnight UTC of the day, `time_resolution="day"`; events of one user on
one day keep the order of the file. Repeated identical rows are kept (they are separate events in the
source). In the features, `-1` means unknown and becomes null; so does brand `0` in the item features,
which marks items without a known brand (about 98% of the sample).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopformer.data.formats._lines import (
    event_log,
    fail_at,
    path_info,
    read_lines,
    require_integer_ids,
    require_pattern,
    split_fields,
)
from shopformer.data.schema import Catalog, Dataset, EventLog

EVENT_TYPES: dict[str, str] = {"1": "click", "2": "favourite", "3": "cart", "4": "purchase"}

USER_FEATURES: tuple[str, ...] = (
    "pred_gender", "pred_age_level", "pred_education_degree", "pred_career_type", "predict_income", "pred_stage",
)


def read_taobao(edges_path: str | Path, user_features_path: str | Path | None = None,
                item_features_path: str | Path | None = None, name: str | None = None) -> Dataset:
    """Read the edge file and, when given, the item features (catalog) and user features (users)."""
    events = _read_edges(edges_path)
    catalog = _read_items(item_features_path) if item_features_path is not None else None
    users = _read_users(user_features_path) if user_features_path is not None else None
    info = {
        "format": "taobao",
        "paths": path_info(edges=edges_path, user_features=user_features_path, item_features=item_features_path),
        "event_types": {f"type {code}": event for code, event in EVENT_TYPES.items()},
    }
    return Dataset(name or Path(edges_path).parent.name, events, catalog, users, info)


def _read_edges(path: str | Path) -> EventLog:
    expected = "user<TAB>item<TAB>type 1-4<TAB>yyyymmdd"
    rows = split_fields(read_lines(path), path, ["user_id", "item_id", "type", "date"], expected=expected)
    require_integer_ids(rows, "user_id", path, what="user id")
    require_integer_ids(rows, "item_id", path, what="item id")
    require_pattern(rows, "type", r"^[1-4]$", path, what="event type",
                    expected="1 click, 2 favourite, 3 cart or 4 purchase")
    day = pl.col("date").str.to_date("%Y%m%d", strict=False)
    fail_at(rows.filter(day.is_null()), path, "date is not a calendar day", column="date",
            expected="yyyymmdd", found_column="date")
    events = rows.select(
        "user_id", "item_id",
        timestamp=day.cast(pl.Datetime("us", "UTC")).dt.epoch("s"),
        event_type=pl.col("type").replace_strict(EVENT_TYPES, return_dtype=pl.String),
    )
    return event_log(events, "day")


def _read_items(path: str | Path) -> Catalog:
    names = ["item_id", "cate_1", "cate", "brand", "price"]
    rows = split_fields(read_lines(path), path, names, expected="item<TAB>cate_1<TAB>cate<TAB>brand<TAB>price")
    for column in names[:4]:
        require_integer_ids(rows, column, path, what=column)
    price = pl.col("price").cast(pl.Float64, strict=False)
    fail_at(rows.filter(price.is_null() | (price < 0)), path, "price is not a non-negative number",
            column="price", expected="a number >= 0", found_column="price")
    fail_at(rows.filter(~pl.col("item_id").is_first_distinct()), path, "describes an item a second time",
            column="item_id", expected="one line per item", found_column="item_id")
    catalog = rows.select(
        "item_id",
        category=pl.format("{}/{}", "cate_1", "cate"),
        brand=pl.when(pl.col("brand") != "0").then("brand"),
        price=price,
    )
    return Catalog(catalog)


def _read_users(path: str | Path) -> pl.DataFrame:
    rows = split_fields(read_lines(path), path, ["user_id", *USER_FEATURES],
                        expected="user<TAB>" + "<TAB>".join(USER_FEATURES))
    require_integer_ids(rows, "user_id", path, what="user id")
    for column in USER_FEATURES[:4]:
        require_pattern(rows, column, r"^-?\d+$", path, what=column, expected="an integer code, -1 if unknown")
    require_pattern(rows, "predict_income", r"^-?\d+(\.\d*)?$", path, what="predict_income", expected="a number")
    require_pattern(rows, "pred_stage", r"^-?\d+(,-?\d+)*$", path, what="pred_stage",
                    expected="comma-separated integer codes")
    fail_at(rows.filter(~pl.col("user_id").is_first_distinct()), path, "describes a user a second time",
            column="user_id", expected="one line per user", found_column="user_id")
    codes = [_unknown_as_null(pl.col(column).cast(pl.Int64)).alias(column) for column in USER_FEATURES[:4]]
    stages = pl.col("pred_stage").str.split(",").cast(pl.List(pl.Int64))
    return rows.select(
        "user_id", *codes,
        predict_income=_unknown_as_null(pl.col("predict_income").cast(pl.Float64)),
        pred_stage=pl.when(pl.col("pred_stage") != "-1").then(stages),
    )


def _unknown_as_null(values: pl.Expr) -> pl.Expr:
    return pl.when(values != -1).then(values)
