"""Reader for the S3-Rec sequence format (Amazon review sequences as used by S3-Rec, ICLRec, BSARec...).

Files:
- events: one line per user, `uid i1 i2 ...`, items in time order, integer ids, no timestamps;
- item attributes (`<Name>_item2attributes.json`): `{item id: [attribute ids]}`;
- datamaps (`datamaps.json`): `id2item` (item id -> ASIN), `id2attribute` (attribute id -> name), ...;
- item titles (`item_title_prefix.txt`): `ASIN first-title-words`, one item per line.

The Amazon data are reviews; these benchmarks treat every review as a purchase, so each event is
`purchase`. There are no times: `timestamp` is the position in the user's sequence (0..n-1) and the
log has `time_resolution="order"`.

Attributes are brand and category names mixed in one list. S3-Rec's preprocessing puts the brand
first, but the lists shipped with the data do not keep that order (in Beauty a brand often sits in
second place and category names come first), so they cannot be told apart and are kept together as
`attributes`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import polars as pl

from shopformer.data.formats._lines import (
    event_log,
    explode_tokens,
    fail_at,
    path_info,
    read_lines,
    require_integer_ids,
)
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.errors import ConfigError, DataError


def read_s3rec(
    events_path: str | Path,
    item_attributes_path: str | Path | None = None,
    datamaps_path: str | Path | None = None,
    item_titles_path: str | Path | None = None,
    name: str | None = None,
) -> Dataset:
    """Read an S3-Rec sequence file and, when given, its attribute, datamap and title files.

    Item and user ids stay the integer tokens of the sequence file (as strings); the catalog keeps
    each item's ASIN in `asin` when the datamaps are given, and titles need those datamaps to join.
    The catalog lists every item of the events and of the side files.
    """
    if item_titles_path is not None and datamaps_path is None:
        raise ConfigError("item titles are keyed by ASIN: pass datamaps_path as well to join them to items")
    events = _read_sequences(events_path)
    datamaps = _read_json(datamaps_path) if datamaps_path is not None else None
    catalog, catalog_info = _catalog(events, item_attributes_path, datamaps, datamaps_path, item_titles_path)
    info = {
        "format": "s3rec",
        "paths": path_info(events=events_path, item_attributes=item_attributes_path,
                           datamaps=datamaps_path, item_titles=item_titles_path),
        "event_type": "purchase (each review is taken as a purchase)",
        **catalog_info,
    }
    return Dataset(name or Path(events_path).stem, events, catalog, info=info)


def _read_sequences(path: str | Path) -> EventLog:
    lines = read_lines(path)
    short = lines.filter(pl.col("line").str.count_matches(r"\S+") < 2)
    fail_at(short, path, "has no items", expected="a user id followed by at least one item id")
    tokens = explode_tokens(lines, "line")
    require_integer_ids(tokens, "line", path, what="id token")
    users = tokens.filter(pl.col("position") == 0).select("line_no", user_id="line")
    fail_at(users.filter(~pl.col("user_id").is_first_distinct()), path,
            "repeats a user that has an earlier line", column="user_id",
            expected="one line per user", found_column="user_id")
    items = tokens.filter(pl.col("position") > 0).join(users, on="line_no", how="left", maintain_order="left")
    events = items.select(
        "user_id",
        item_id="line",
        timestamp=pl.col("position") - 1,
        event_type=pl.lit("purchase"),
    )
    return event_log(events, "order")


def _read_json(path: str | Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except json.JSONDecodeError as err:
        raise DataError(f"is not valid JSON: {err.msg}", path=str(path), row=err.lineno) from None
    if not isinstance(content, dict):
        raise DataError("is not a JSON object", path=str(path), expected="{key: value, ...}",
                        found=type(content).__name__)
    return content


def _catalog(events: EventLog, attributes_path, datamaps: dict | None, datamaps_path,
             titles_path) -> tuple[Catalog, dict]:
    parts = [events.frame.select("item_id").unique()]
    attributes = _read_attributes(attributes_path, datamaps, datamaps_path) if attributes_path else None
    asins = _asins(datamaps, datamaps_path) if datamaps is not None else None
    parts += [frame.select("item_id") for frame in (attributes, asins) if frame is not None]
    catalog = pl.concat(parts).unique().sort(pl.col("item_id").cast(pl.Int64, strict=False), "item_id")
    for side in (asins, attributes):
        if side is not None:
            catalog = catalog.join(side, on="item_id", how="left", maintain_order="left")
    info: dict = {}
    if titles_path is not None:
        catalog = catalog.join(_read_titles(titles_path), on="asin", how="left", maintain_order="left")
        info["items_with_title"] = catalog["title"].is_not_null().sum()
    return Catalog(catalog), info


def _read_attributes(path, datamaps: dict | None, datamaps_path) -> pl.DataFrame:
    content = _read_json(path)
    try:
        frame = pl.DataFrame(
            {"item_id": list(content.keys()), "attribute_id": list(content.values())},
            schema={"item_id": pl.String, "attribute_id": pl.List(pl.Int64)},
        )
    except (TypeError, ValueError, pl.exceptions.PolarsError) as err:
        raise DataError("is not an item -> attribute-id list map", path=str(path),
                        expected='{"item id": [attribute ids as integers]}', found=str(err)[:200]) from None
    pairs = frame.explode("attribute_id").drop_nulls("attribute_id")
    pairs = pairs.with_columns(attribute=pl.col("attribute_id").cast(pl.String))
    names = datamaps.get("id2attribute") if datamaps is not None else None
    if names is not None:
        pairs = pairs.with_columns(attribute=_attribute_names(pairs, names, path, datamaps_path))
        # Attribute names with an empty text carry nothing (Sports has one such attribute).
        pairs = pairs.filter(pl.col("attribute") != "")
    grouped = pairs.group_by("item_id", maintain_order=True).agg(attributes=pl.col("attribute"))
    # Items listed without any (named) attribute get an empty list: known to have none, not unknown.
    no_attributes = pl.lit([], dtype=pl.List(pl.String))
    return frame.select("item_id").join(grouped, on="item_id", how="left", maintain_order="left").with_columns(
        pl.col("attributes").fill_null(no_attributes))


def _attribute_names(pairs: pl.DataFrame, names: dict, path, datamaps_path) -> pl.Series:
    # The names are HTML-escaped in the source ("Crabtree &amp; Evelyn"); show them as written.
    readable = {str(key): html.unescape(str(value)) for key, value in names.items()}
    unknown = pairs.filter(~pl.col("attribute").is_in(list(readable)))
    if unknown.height:
        raise DataError(f"uses an attribute id that {datamaps_path} does not name", path=str(path),
                        column="id2attribute", found=unknown["attribute"][0])
    return pairs["attribute"].replace_strict(readable, return_dtype=pl.String)


def _asins(datamaps: dict, path) -> pl.DataFrame:
    id2item = datamaps.get("id2item")
    if id2item is None and "item2id" in datamaps:
        id2item = {item_id: asin for asin, item_id in datamaps["item2id"].items()}
    if not isinstance(id2item, dict):
        raise DataError("has no item map", path=str(path), column="id2item",
                        expected='"id2item": {item id: ASIN} or "item2id": {ASIN: item id}')
    return pl.DataFrame(
        {"item_id": [str(key) for key in id2item], "asin": [str(value) for value in id2item.values()]},
        schema={"item_id": pl.String, "asin": pl.String},
    )


def _read_titles(path) -> pl.DataFrame:
    lines = read_lines(path)
    titles = lines.select(
        "line_no",
        asin=pl.col("line").str.extract(r"^\s*(\S+)", 1),
        title=pl.col("line").str.extract(r"^\s*\S+\s+(.*\S)", 1),
    )
    fail_at(titles.filter(~pl.col("asin").is_first_distinct()), path, "gives a second title for an item",
            column="asin", expected="one line per ASIN", found_column="asin")
    return titles.select("asin", "title")
