"""Reader for prepared YOOCHOOSE (RecSys Challenge 2015) click files, as written by session-rec.

Format: tab separated with a header naming at least `SessionId`, `ItemId` and `Time` (unix seconds,
possibly fractional); other columns are ignored. The clicks are anonymous, so `user_id` is the session
id. Times are cut to whole seconds (the contract's unit); clicks within the same second keep the
order of the file. Every event is a `click`.

session-rec ships a split as separate files (`*_train_full.txt` + `*_test.txt`, or `*_train_tr.txt` +
`*_train_valid.txt` for tuning); pass the held-out file as `test_path` to read both into one log whose
rows carry `split` = train/test. Its sessions must not occur in the training file.
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
    split_fields,
    split_header,
)
from shopformer.data.schema import Dataset
from shopformer.errors import DataError

COLUMNS: dict[str, str] = {"SessionId": "session_id", "ItemId": "item_id", "Time": "time"}


def read_yoochoose(path: str | Path, test_path: str | Path | None = None, name: str | None = None) -> Dataset:
    """Read one prepared click file, or a train file plus its held-out `test_path` file."""
    parts = [_read_clicks(path, "train" if test_path is not None else None)]
    if test_path is not None:
        parts.append(_read_clicks(test_path, "test"))
        _require_disjoint_sessions(parts[0], parts[1], test_path)
    events = event_log(pl.concat(parts).drop("line_no"), "second")
    info = {
        "format": "yoochoose",
        "paths": path_info(events=path, test=test_path),
        "event_type": "click",
        "sessions": events.frame["session_id"].n_unique(),
    }
    return Dataset(name or Path(path).stem, events, info=info)


def _read_clicks(path: str | Path, split: str | None) -> pl.DataFrame:
    header, lines = split_header(read_lines(path), path, "a header SessionId<TAB>ItemId<TAB>Time")
    names = [name.strip() for name in header.split("\t")]
    missing = [name for name in COLUMNS if name not in names]
    if missing:
        raise DataError(f"header lacks the column '{missing[0]}'", path=str(path), row=1,
                        expected="SessionId<TAB>ItemId<TAB>Time", found=header)
    rows = split_fields(lines, path, names, expected=f"{len(names)} tab-separated fields as in the header")
    rows = rows.select("line_no", *(pl.col(raw).alias(ours) for raw, ours in COLUMNS.items()))
    require_integer_ids(rows, "session_id", path, what="session id")
    require_integer_ids(rows, "item_id", path, what="item id")
    seconds = pl.col("time").cast(pl.Float64, strict=False)
    fail_at(rows.filter(seconds.is_null() | (seconds < 0)), path, "time is not unix seconds", column="Time",
            expected="unix seconds, e.g. 1396437466.94", found_column="time")
    clicks = rows.select(
        "line_no",
        user_id="session_id",
        item_id="item_id",
        timestamp=seconds.floor().cast(pl.Int64),
        event_type=pl.lit("click"),
        session_id="session_id",
    )
    return clicks.with_columns(split=pl.lit(split)) if split is not None else clicks


def _require_disjoint_sessions(train: pl.DataFrame, test: pl.DataFrame, test_path: str | Path) -> None:
    shared = test.filter(pl.col("session_id").is_in(train["session_id"].implode()))
    fail_at(shared, test_path, "holds a session that is also in the training file", column="SessionId",
            expected="sessions disjoint from the training file", found_column="session_id")
