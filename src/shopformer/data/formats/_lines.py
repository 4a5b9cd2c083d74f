"""Line-oriented parsing shared by the format readers.

Every reader turns its file into a frame of `(line_no, line)` first, so that any malformed value can
be reported with the file and the 1-based line it came from (DataError's `row` is that line number,
header lines included). All checks run as Polars expressions over the whole file at once.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopformer.data.schema import (
    EVENT_COLUMNS,
    OPTIONAL_EVENT_COLUMNS,
    EventLog,
    TimeResolution,
)
from shopformer.errors import DataError

#: Ids in the numeric research formats: non-negative integers written in decimal.
INTEGER_ID = r"^\d+$"


def read_lines(path: str | Path) -> pl.DataFrame:
    """The non-blank lines of a UTF-8 text file as `line_no` (1-based) and `line` (no line ending)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except UnicodeDecodeError as err:
        raise DataError("is not UTF-8 text", path=str(path), expected="UTF-8", found=str(err)) from None
    except OSError as err:
        raise DataError(f"cannot be read: {err.strerror}", path=str(path)) from None
    lines = pl.Series("line", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")
    frame = pl.DataFrame(lines).with_row_index("line_no", offset=1)
    # Blank lines (the final newline, stray empty lines) carry nothing; dropping them keeps numbering.
    return frame.with_columns(pl.col("line_no").cast(pl.Int64)).filter(pl.col("line").str.strip_chars() != "")


def fail_at(rows: pl.DataFrame, path: str | Path, message: str, *, column: str | None = None,
            expected: str | None = None, found_column: str = "line") -> None:
    """Raise a DataError for the first of `rows` (the offending lines), if there is any."""
    if rows.height == 0:
        return
    first = rows.row(0, named=True)
    found = first.get(found_column)
    raise DataError(
        message,
        path=str(path),
        row=first["line_no"],
        column=column,
        expected=expected,
        found=None if found is None else str(found),
    )


def split_header(lines: pl.DataFrame, path: str | Path, expected: str) -> tuple[str, pl.DataFrame]:
    """The first line (a header) and the remaining lines; an empty file is an error."""
    if lines.height == 0:
        raise DataError("is empty", path=str(path), expected=expected)
    return lines["line"][0], lines.slice(1)


def split_fields(lines: pl.DataFrame, path: str | Path, names: list[str], *, separator: str = "\t",
                 expected: str | None = None) -> pl.DataFrame:
    """Split each line into exactly `len(names)` fields (stripped strings); other counts are an error."""
    fields = lines.with_columns(pl.col("line").str.split(separator).alias("_fields"))
    wrong = fields.filter(pl.col("_fields").list.len() != len(names))
    layout = expected or f"{len(names)} fields separated by {separator!r}: {' '.join(names)}"
    fail_at(wrong, path, "has the wrong number of fields", expected=layout)
    return fields.select(
        "line_no",
        *(pl.col("_fields").list.get(i).str.strip_chars().alias(name) for i, name in enumerate(names)),
    )


def explode_tokens(frame: pl.DataFrame, column: str, *, position: str = "position") -> pl.DataFrame:
    """One row per whitespace-separated token of `column`, with its 0-based `position` in the line."""
    tokens = frame.with_columns(pl.col(column).str.extract_all(r"\S+"))
    tokens = tokens.with_columns(pl.int_ranges(pl.col(column).list.len()).alias(position))
    return tokens.explode([column, position])


def require_pattern(frame: pl.DataFrame, column: str, pattern: str, path: str | Path, *,
                    what: str, expected: str) -> None:
    """Every value of `column` must match the regular expression `pattern`."""
    bad = frame.filter(pl.col(column).is_null() | ~pl.col(column).str.contains(pattern))
    fail_at(bad, path, f"{what} is malformed", column=column, expected=expected, found_column=column)


def require_integer_ids(frame: pl.DataFrame, column: str, path: str | Path, *, what: str) -> None:
    """Every value of `column` must be a non-negative integer id."""
    require_pattern(frame, column, INTEGER_ID, path, what=what, expected="a non-negative integer id")


def event_log(frame: pl.DataFrame, time_resolution: TimeResolution) -> EventLog:
    """Canonical columns only, in contract order, sorted by user then time (ties keep file order)."""
    known = [name for name in (*EVENT_COLUMNS, *OPTIONAL_EVENT_COLUMNS) if name in frame.columns]
    events = frame.select(known).sort(["user_id", "timestamp"], maintain_order=True)
    return EventLog(events, time_resolution)


def path_info(**paths: str | Path | None) -> dict[str, str]:
    """Source paths for `Dataset.info`, leaving out the optional files that were not given."""
    return {role: str(Path(path)) for role, path in paths.items() if path is not None}
