"""Reader for RecBole atomic files (tab separated, typed headers such as `user_id:token`).

Two interaction layouts are understood:
- `<name>.inter` with `user_id`, `item_id` and optionally `timestamp` and `rating` fields: one row per
  event (unix-second timestamps; without them, file order within a user is the time order);
- the sequential benchmark split `<name>.train.inter`, `.valid.inter`, `.test.inter` with
  `user_id:token  item_id_list:token_seq  item_id:token`: one row per (history, target) pair, histories
  possibly cut to their last N items. Each user's full sequence is rebuilt (first history + every
  target in order), every row is checked against it, and events get `split` = train/valid/test, so a
  leave-one-out split of the result equals the shipped one. Timestamps are sequence positions.

`<name>.item2index` / `<name>.user2index` (`raw id<TAB>token`) map the tokens of the .inter files back
to the shop's ids (ASINs, reviewer ids); when present, events use those raw ids so they join the
`.text` catalog, which is keyed by raw item id. `<name>.text` (`item_id:token  text:token_seq`) holds
`title. categories. brand. ` in the UniSRec/Recformer layout: the whole text becomes `description`, and
its parts become `title`, `category` and `brand` (see `_split_item_text`).

Events are `purchase` by default: the Amazon data shipped in this format are reviews taken as purchases.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from shopformer.data.formats._lines import (
    event_log,
    explode_tokens,
    fail_at,
    path_info,
    read_lines,
    split_fields,
    split_header,
)
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.errors import DataError

SPLITS = ("train", "valid", "test")


def read_recbole(directory_or_prefix: str | Path, name: str | None = None, *,
                 event_type: str = "purchase") -> Dataset:
    """Read RecBole atomic files given their folder (one dataset in it) or their common path prefix.

    `directory_or_prefix` is e.g. `data/Scientific/` or `data/Scientific/Scientific`.
    """
    prefix = _resolve_prefix(Path(directory_or_prefix))
    files = {suffix: _file(prefix, suffix) for suffix in
             ("inter", "train.inter", "valid.inter", "test.inter", "item2index", "user2index", "text")}
    item_ids = _read_index(files["item2index"]) if files["item2index"] else None
    user_ids = _read_index(files["user2index"]) if files["user2index"] else None
    if any(files[f"{split}.inter"] for split in SPLITS):
        events = _read_split_sequences(files, item_ids, user_ids, event_type)
    elif files["inter"]:
        events = _read_plain_inter(files["inter"], item_ids, user_ids, event_type)
    else:
        raise DataError("has no interaction file", path=str(prefix),
                        expected=f"{prefix.name}.inter or {prefix.name}.train/.valid/.test.inter")
    catalog = _read_text(files["text"]) if files["text"] else None
    info = {
        "format": "recbole",
        "paths": path_info(**{suffix.replace(".", "_"): path for suffix, path in files.items()}),
        "event_type": f"{event_type} (every interaction)",
        "ids": "raw ids from .item2index/.user2index" if item_ids is not None else "tokens of the .inter files",
    }
    return Dataset(name or prefix.name, events, catalog, info=info)


def _resolve_prefix(path: Path) -> Path:
    if not path.is_dir():
        return path
    stems = {entry.name.split(".")[0] for entry in path.iterdir() if entry.name.endswith(".inter")}
    if len(stems) != 1:
        raise DataError("must hold the .inter files of exactly one dataset", path=str(path),
                        expected="one <name>.inter or <name>.train/.valid/.test.inter set",
                        found=", ".join(sorted(stems)) or "no .inter file")
    return path / stems.pop()


def _file(prefix: Path, suffix: str) -> Path | None:
    candidate = prefix.with_name(f"{prefix.name}.{suffix}")
    return candidate if candidate.is_file() else None


def _read_atomic(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    """Fields of a typed-header atomic file as String columns named without their type."""
    header, rows = split_header(read_lines(path), path, "a header such as 'user_id:token<TAB>item_id:token'")
    names = [field.split(":")[0].strip() for field in header.split("\t")]
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(f"header lacks the field '{missing[0]}'", path=str(path), row=1,
                        expected=" ".join(f"{name}:<type>" for name in required), found=header)
    return split_fields(rows, path, names, expected=f"{len(names)} tab-separated fields as in the header")


def _read_index(path: Path) -> dict[str, str]:
    """token -> raw id, from a `raw id<TAB>token` file."""
    rows = split_fields(read_lines(path), path, ["raw_id", "token"], expected="raw id<TAB>integer token")
    fail_at(rows.filter(~pl.col("token").is_first_distinct()), path, "maps a token a second time",
            column="token", expected="one raw id per token", found_column="token")
    return dict(zip(rows["token"].to_list(), rows["raw_id"].to_list()))


def _to_raw(frame: pl.DataFrame, column: str, mapping: dict[str, str] | None, path: Path,
            index_name: str) -> pl.DataFrame:
    _require_mapped(frame, column, mapping, path, index_name)
    if mapping is None:
        return frame
    return frame.with_columns(pl.col(column).replace_strict(mapping, return_dtype=pl.String))


def _read_plain_inter(path: Path, item_ids, user_ids, event_type: str) -> EventLog:
    rows = _read_atomic(path, ("user_id", "item_id"))
    rows = _to_raw(_to_raw(rows, "item_id", item_ids, path, ".item2index"), "user_id", user_ids, path, ".user2index")
    has_time = "timestamp" in rows.columns
    columns = {"timestamp": _numeric(rows, "timestamp", path).floor().cast(pl.Int64)} if has_time else {
        "timestamp": pl.int_range(pl.len()).over("user_id")}
    if "rating" in rows.columns:
        columns["rating"] = _numeric(rows, "rating", path)
    events = rows.with_columns(event_type=pl.lit(event_type), **columns)
    return event_log(events, "second" if has_time else "order")


def _numeric(rows: pl.DataFrame, column: str, path: Path) -> pl.Expr:
    values = pl.col(column).cast(pl.Float64, strict=False)
    fail_at(rows.filter(values.is_null()), path, f"{column} is not a number", column=column,
            expected="a number", found_column=column)
    return values


def _read_split_sequences(files: dict, item_ids, user_ids, event_type: str) -> EventLog:
    """Rebuild full user sequences from augmented (history, target) rows and mark each event's split."""
    pairs = pl.concat([_read_pairs(files, split, order, item_ids, user_ids) for order, split in enumerate(SPLITS)])
    pairs = _order_targets(pairs)
    # The history of a user's earliest row holds the items before the first target: training data.
    starts = pairs.filter(pl.col("target_rank") == 0).select("user_id", item_id="history")
    first_items = explode_tokens(starts, "item_id").with_columns(
        rank=pl.col("position") - pl.col("position").max().over("user_id") - 1, split=pl.lit("train"))
    targets = pairs.select("user_id", item_id="target", rank="target_rank", split="split")
    sequences = pl.concat([first_items.select(targets.columns), targets]).with_columns(
        timestamp=pl.col("rank") - pl.col("rank").min().over("user_id"))
    _check_histories(pairs, sequences)
    events = sequences.with_columns(event_type=pl.lit(event_type))
    for column, mapping in (("item_id", item_ids), ("user_id", user_ids)):
        if mapping is not None:
            events = events.with_columns(pl.col(column).replace_strict(mapping, return_dtype=pl.String))
    return event_log(events, "order")


def _read_pairs(files: dict, split: str, order: int, item_ids, user_ids) -> pl.DataFrame:
    path = files[f"{split}.inter"]
    if path is None:
        given = next(files[f"{name}.inter"] for name in SPLITS if files[f"{name}.inter"])
        raise DataError(f"the {split} file of the split is missing", path=str(given),
                        expected="train, valid and test .inter files side by side")
    rows = _read_atomic(path, ("user_id", "item_id_list", "item_id"))
    empty = rows.filter(pl.col("item_id_list").str.count_matches(r"\S+") == 0)
    fail_at(empty, path, "has an empty history", column="item_id_list", expected="at least one item")
    _require_mapped(rows, "user_id", user_ids, path, ".user2index")
    _require_mapped(rows, "item_id", item_ids, path, ".item2index")
    _require_mapped(explode_tokens(rows, "item_id_list"), "item_id_list", item_ids, path, ".item2index")
    return rows.select(
        "user_id", "line_no",
        history="item_id_list", target="item_id",
        history_length=pl.col("item_id_list").str.count_matches(r"\S+"),
        split=pl.lit(split), split_order=pl.lit(order), path=pl.lit(str(path)),
    )


def _require_mapped(rows: pl.DataFrame, column: str, mapping: dict[str, str] | None, path: Path,
                    index_name: str) -> None:
    if mapping is not None:
        unknown = rows.filter(~pl.col(column).is_in(list(mapping)))
        fail_at(unknown, path, f"uses a token that {index_name} does not map", column=column,
                expected=f"a token listed in {index_name}", found_column=column)


def _order_targets(pairs: pl.DataFrame) -> pl.DataFrame:
    """Rank each user's rows by the position of their target in the user's sequence.

    Splits come in order (train < valid < test). Within the train file, a longer history means a
    later target; rows whose histories were cut to the same maximum length keep the order of the file,
    whose direction (longest-first or shortest-first) is read off the uncut rows.
    """
    file_direction = _file_direction(pairs.filter(pl.col("split") == "train"))
    pairs = pairs.with_columns(file_key=pl.col("line_no") * file_direction)
    pairs = pairs.sort(["user_id", "split_order", "history_length", "file_key"])
    return pairs.with_columns(target_rank=pl.int_range(pl.len()).over("user_id")).drop("file_key")


def _file_direction(train: pl.DataFrame) -> int:
    steps = train.select(
        step=pl.col("history_length").diff().over("user_id", order_by="line_no"))["step"]
    return -1 if (steps < 0).sum() > (steps > 0).sum() else 1


def _check_histories(pairs: pl.DataFrame, sequences: pl.DataFrame) -> None:
    """Each row's history must be the items right before its target in the rebuilt sequence."""
    target_position = sequences.filter(pl.col("rank") >= 0).select(
        "user_id", target_rank="rank", target_position="timestamp")
    expected = sequences.select("user_id", "item_id", position="timestamp")
    tokens = explode_tokens(pairs.join(target_position, on=["user_id", "target_rank"]), "history", position="k")
    tokens = tokens.with_columns(
        position=pl.col("target_position") - pl.col("history_length") + pl.col("k"))
    checked = tokens.join(expected, on=["user_id", "position"], how="left")
    wrong = checked.filter(pl.col("item_id").is_null() | (pl.col("item_id") != pl.col("history")))
    if wrong.height:
        first = wrong.sort("split_order", "line_no").row(0, named=True)
        raise DataError("history disagrees with the user's other rows", path=first["path"],
                        row=first["line_no"], column="item_id_list",
                        expected=f"item {first['item_id']} at history position {first['k']}",
                        found=first["history"])


def _read_text(path: Path) -> Catalog:
    rows = _read_atomic(path, ("item_id", "text"))
    fail_at(rows.filter(~pl.col("item_id").is_first_distinct()), path, "describes an item a second time",
            column="item_id", expected="one line per item", found_column="item_id")
    texts = [_text_parts(text) for text in rows["text"].to_list()]
    # An empty part is a known category string too: items without categories ("title. . brand").
    known_categories = {parts[1] for parts in texts if len(parts) == 3} | {""}
    # Amazon category paths share their root ("Industrial & Scientific ..."): a part starting with it
    # is a category string even when no unambiguous row has exactly that path.
    root = os.path.commonprefix(sorted(category for category in known_categories if category))
    fields = [_title_category_brand(parts, known_categories, root) for parts in texts]
    title, category, brand = ([row[i] for row in fields] for i in range(3))
    catalog = rows.select(
        "item_id",
        title=pl.Series(title, dtype=pl.String),
        description=pl.col("text").str.strip_chars().str.strip_suffix(".").str.strip_chars(),
        category=pl.Series(category, dtype=pl.String),
        brand=pl.Series(brand, dtype=pl.String),
    )
    return Catalog(catalog)


def _text_parts(text: str) -> list[str]:
    return [part.strip() for part in text.strip().removesuffix(".").split(". ")]


def _title_category_brand(parts: list[str], known_categories: set[str], root: str) -> tuple[str | None, ...]:
    """(title, categories, brand) from the '. '-separated parts of a `title. categories. brand. ` text.

    Three parts are unambiguous. With more, a '. ' sits inside the title ("24 Oz. Sprayer Bottles") or
    the brand ("Mr. Heater"): the categories are the one part found among the category strings of
    unambiguous rows or starting with their common `root`; failing that, the title is taken to hold the extra '. ' (the more common case).
    A text with fewer parts does not follow the layout and is all title.
    """
    if len(parts) < 3:
        return ". ".join(parts) or None, None, None
    matches = [i for i in range(1, len(parts) - 1)
               if parts[i] in known_categories or (len(root) > 3 and parts[i].startswith(root))]
    at = matches[0] if len(parts) > 3 and len(matches) == 1 else len(parts) - 2
    title, brand = ". ".join(parts[:at]), ". ".join(parts[at + 1:])
    return title or None, parts[at] or None, brand or None
