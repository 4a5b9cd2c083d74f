"""Reader for session-list text files (Diginetica, Tmall... as preprocessed by SR-GNN / GCE-GNN).

Files:
- train sessions: one session per line, integer item ids separated by spaces;
- test cases (optional): `prefix items<TAB>target item`, one next-item case per line.

Each line becomes one session: `session_id` is `train-<line>` or `test-<line>` (the 1-based line number
in its file, so a session points back to its source) and `split` is `train` or `test`. The sessions are
anonymous, so `user_id` is the session id. There are no times: `timestamp` is the position in the
session and the log has `time_resolution="order"`. The files do not say what the events were; they are
`click` (item views or clicks in the original logs).

A test session is its prefix followed by its target, so the target is the session's last event and a
leave-last-out split of the test sessions gives back exactly the shipped test cases. The shipped test
cases are themselves every prefix of each original test session, so test sessions overlap heavily:
count behaviour on train sessions only.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopformer.data.formats._lines import (
    event_log,
    explode_tokens,
    fail_at,
    path_info,
    read_lines,
    require_integer_ids,
    split_fields,
)
from shopformer.data.schema import Dataset


def read_session_lists(train_path: str | Path, test_path: str | Path | None = None,
                       name: str | None = None) -> Dataset:
    """Read train sessions and, when given, test cases into one event log marked with `split`."""
    parts = [_read_train(train_path)]
    if test_path is not None:
        parts.append(_read_test(test_path))
    events = event_log(pl.concat(parts), "order")
    info = {
        "format": "sessions",
        "paths": path_info(train=train_path, test=test_path),
        "event_type": "click (the files do not record the kind of event)",
        "train_sessions": parts[0]["session_id"].n_unique(),
        "test_cases": parts[1]["session_id"].n_unique() if test_path is not None else 0,
    }
    return Dataset(name or Path(train_path).parent.name, events, info=info)


def _read_train(path: str | Path) -> pl.DataFrame:
    lines = read_lines(path)
    return _sessions(lines.select("line_no", items="line"), path, "train")


def _read_test(path: str | Path) -> pl.DataFrame:
    fields = split_fields(read_lines(path), path, ["prefix", "target"],
                          expected="prefix item ids<TAB>target item id")
    empty = fields.filter((pl.col("prefix") == "") | (pl.col("target") == ""))
    fail_at(empty, path, "lacks its prefix or its target", expected="prefix item ids<TAB>target item id",
            found_column="prefix")
    fail_at(fields.filter(pl.col("target").str.contains(r"\s")), path, "has more than one target item",
            column="target", expected="one target item id", found_column="target")
    # Appending the target makes it the session's last event.
    sessions = fields.select("line_no", items=pl.concat_str("prefix", "target", separator=" "))
    return _sessions(sessions, path, "test")


def _sessions(lines: pl.DataFrame, path: str | Path, split: str) -> pl.DataFrame:
    tokens = explode_tokens(lines, "items")
    require_integer_ids(tokens, "items", path, what="item id")
    session_id = pl.format("{}-{}", pl.lit(split), pl.col("line_no"))
    return tokens.select(
        user_id=session_id,
        item_id="items",
        timestamp="position",
        event_type=pl.lit("click"),
        session_id=session_id,
        split=pl.lit(split),
    )
