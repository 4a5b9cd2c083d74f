"""A folder or glob of Parquet files read lazily into narrow integer columns: ingestion beyond memory.

The rules are `ingest_files`' own, applied as Polars expressions to a lazy scan: the same mapping
guess (`resolve_event_mapping`), the same conversion of every value to a string first
(`string_columns`), one time format decided from the first values (`detect_format`), the same
event-type mapping and the same quarantine reasons (`quarantine_reason`). A `ScanPlan` holds what
was decided once for the whole input, so another engine (Spark) can apply `canonical_events` to its
own batches and accept exactly the rows the local scan accepts.

After the two cheap passes that plan the scan and learn the distinct ids, one streaming pass keeps
only integer codes: user and item codes (from the sorted distinct ids), int64 seconds and an int8
event-type code, about 17 bytes an event instead of the ~70 of string columns.
"""

from __future__ import annotations

import glob
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.inspect import resolve_event_mapping
from shopformer.data.io import string_columns
from shopformer.data.mapping import EventMapping
from shopformer.data.timeparse import detect_format, parse_times
from shopformer.data.validate import REASONS, event_type_mapping, quarantine_reason, reason_details, write_ingest_report
from shopformer.errors import DataError

__all__ = ["EncodedEvents", "ScanPlan", "canonical_events", "encode_events", "is_parquet_collection",
           "parquet_files", "plan_scan", "reason_code", "resolve_scan_mapping", "scan_parquet_events",
           "split_quarantine", "write_scan_report"]

_PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARACTERS = "*?["
#: Values looked at to decide the time format, as `detect_format` reads them.
TIME_SAMPLE = 2000
#: Optional fields a streaming scan carries: numbers, 8 bytes an event.
NUMERIC_FIELDS = ("quantity", "value", "rating")
#: Optional string fields it does not carry (their text would not fit the narrow columns).
WIDE_FIELDS = ("event_id", "query", "text")


def is_parquet_collection(source: str | Path) -> bool:
    """Whether `source` names several Parquet files at once: a folder or a glob pattern."""
    return any(c in str(source) for c in _GLOB_CHARACTERS) or Path(source).is_dir()


def parquet_files(source: str | Path) -> list[str]:
    """The Parquet files of a folder (searched recursively), a glob or a single file, in name order.

    Names starting with `_` or `.` (`_SUCCESS`, checksum files that engines leave) are not data.
    """
    text = str(source)
    if any(c in text for c in _GLOB_CHARACTERS):
        candidates = glob.glob(text, recursive=True)
    elif Path(text).is_dir():
        candidates = [str(p) for p in Path(text).rglob("*")]
    elif Path(text).is_file():
        candidates = [text]
    else:
        raise DataError("file or folder not found", path=text)
    files = sorted(f for f in candidates if Path(f).is_file() and Path(f).suffix.lower() in _PARQUET_SUFFIXES
                   and not Path(f).name.startswith(("_", ".")))
    if not files:
        raise DataError("holds no Parquet files", path=text, expected="a folder or glob of .parquet files")
    return files


@dataclass(frozen=True)
class ScanPlan:
    """What is decided once for a whole input: the column mapping, the time format and the event types."""

    mapping: EventMapping
    time_format: str
    time_resolution: str
    event_type_mapping: dict[str, str]
    now: int

    @property
    def numeric_fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.mapping.optional_columns() if f in NUMERIC_FIELDS)

    def event_types(self) -> list[str]:
        """The event types rows can have after mapping (the vocabulary is built from these)."""
        if self.mapping.event_col is None:
            return [self.mapping.default_event]
        return sorted(set(self.event_type_mapping.values()))

    def source_columns(self) -> list[str]:
        """The input columns the scan reads."""
        mapping, optional = self.mapping, self.mapping.optional_columns()
        columns = [mapping.user_col, mapping.item_col, mapping.time_col, mapping.event_col, *(optional[f] for f in self.numeric_fields)]
        return list(dict.fromkeys(c for c in columns if c is not None))

    def event_columns(self) -> list[str]:
        """Columns of the prepared events, in the order the in-memory path gives them."""
        optional = [f for f in self.mapping.optional_columns() if f in (*NUMERIC_FIELDS, "session_id")]
        columns = ["user_id", "item_id", "timestamp", "event_type", *optional]
        return columns if "session_id" in columns else [*columns, "session_id"]


def resolve_scan_mapping(columns: list[str], stated: dict, source: str) -> EventMapping:
    """The mapping of an input with `columns` (stated fields, else guessed), checked for a streaming scan."""
    mapping = resolve_event_mapping(columns, stated)
    wide = [f for f in mapping.optional_columns() if f in WIDE_FIELDS]
    if wide:
        raise DataError(
            f"streaming preparation carries only narrow columns, not the text field '{wide[0]}'; leave it unmapped "
            f"(`{wide[0]}_col: null` under `events:` in --config) or prepare a single file in memory",
            path=source, column=mapping.optional_columns()[wide[0]],
        )
    wanted = [mapping.user_col, mapping.item_col, mapping.time_col, mapping.event_col, *mapping.optional_columns().values()]
    missing = [c for c in wanted if c is not None and c not in columns]
    if missing:
        raise DataError(f"the column '{missing[0]}' is missing; the files have columns {', '.join(map(repr, columns))}. "
                        "Map yours with --user-col, --item-col, --time-col, --event-col or the config",
                        path=source, column=missing[0])
    return mapping


def plan_scan(mapping: EventMapping, time_sample: pl.DataFrame, event_values: pl.DataFrame | None,
              now: int | None = None) -> ScanPlan:
    """The plan from the input's first non-missing time values (in file order) and the distinct values
    of its event-type column, both as read (any type)."""
    fmt = mapping.time_format
    if fmt == "auto":
        fmt = detect_format(time_sample.select(string_columns(time_sample.schema)).to_series())
    type_map = {}
    if mapping.event_col is not None and event_values is not None:
        type_map = event_type_mapping(event_values.select(string_columns(event_values.schema)).to_series(), mapping)
    return ScanPlan(mapping, fmt, "day" if fmt == "yyyymmdd" else "second", type_map, int(time.time()) if now is None else now)


def _integer_time(name: str, dtype: pl.DataType) -> pl.Expr | None:
    """The time column as the integer its string form spells (None for text and fractional columns)."""
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("s")
    if isinstance(dtype, pl.Date):
        return pl.col(name).cast(pl.Int64) * 86_400
    return None


def _parsed_time(plan: ScanPlan, dtype: pl.DataType, as_string: pl.Expr) -> pl.Expr:
    """Unix seconds as `parse_times` reads the column's string form; integer columns in unix seconds
    or milliseconds skip the detour through text (the digit-count rules are `parse_times`' own)."""
    whole = _integer_time(plan.mapping.time_col, dtype)
    if whole is not None and plan.time_format == "unix_s":
        return pl.when(whole.abs().is_between(10**8, 10**11 - 1)).then(whole)
    if whole is not None and plan.time_format == "unix_ms":
        return pl.when(whole.is_between(10**11, 10**14 - 1)).then(whole // 1000)
    fmt = plan.time_format
    return as_string.map_batches(lambda values: parse_times(values, fmt)[0], return_dtype=pl.Int64, is_elementwise=True)


def _mapped(raw: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """`raw` replaced by `mapping[raw]` (null where absent): one `is_in` per target (each raw value has
    one target, so their order does not matter), since `replace` materialises the whole column
    instead of streaming it."""
    by_target: dict[str, list[str]] = {}
    for value, target in mapping.items():
        by_target.setdefault(target, []).append(value)
    mapped = pl.lit(None, dtype=pl.String)
    for target, values in by_target.items():
        mapped = pl.when(raw.is_in(values)).then(pl.lit(target)).otherwise(mapped)
    return mapped


def _codes(column: str, classes: list[str] | pl.Series) -> pl.Expr:
    """Each value's code: `FIRST_CODE` + its position in `classes` (all values must be among them, or null).

    An Enum over `classes` turns a value into its position in one lookup, batch by batch.
    """
    return pl.col(column).cast(pl.Enum(classes)).to_physical().cast(pl.Int32) + FIRST_CODE


def canonical_events(frame: pl.LazyFrame | pl.DataFrame, plan: ScanPlan) -> pl.LazyFrame | pl.DataFrame:
    """The input's rows with the contract's columns: user_id, item_id and event_type as strings,
    timestamp in seconds, the mapped numbers (Float64) and `reason` (null for an accepted row)."""
    mapping = plan.mapping
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    strings = dict(zip(schema.names(), string_columns(schema)))
    if mapping.event_col is None:
        event_type = pl.lit(mapping.default_event, dtype=pl.String)
    else:
        event_type = _mapped(strings[mapping.event_col], plan.event_type_mapping)
    optional = mapping.optional_columns()
    numbers = [strings[optional[f]].alias(f) for f in plan.numeric_fields]
    canonical = frame.select(
        strings[mapping.user_col].alias("user_id"), strings[mapping.item_col].alias("item_id"),
        pl.col(mapping.time_col).alias("__time__"),
        _parsed_time(plan, schema[mapping.time_col], strings[mapping.time_col]).alias("timestamp"),
        event_type.alias("event_type"), *numbers,
    )
    checked = canonical.with_columns(quarantine_reason([*canonical.collect_schema().names()], mapping, plan.now))
    return checked.select("user_id", "item_id", "timestamp", "event_type",
                          *(pl.col(f).cast(pl.Float64, strict=False) for f in plan.numeric_fields), "reason")


def _collect(query: pl.LazyFrame, source: str) -> pl.DataFrame:
    try:
        return query.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:  # a damaged file or files of different schemas
        raise DataError(f"cannot be read as Parquet: {str(exc).splitlines()[0]}", path=source,
                        expected="valid Parquet files with the same columns") from None


def scan_parquet_events(source: str | Path, stated: dict | None = None, now: int | None = None) -> tuple[ScanPlan, pl.LazyFrame]:
    """The plan of a Parquet folder, glob or file and its rows as a lazy `canonical_events` frame."""
    files = parquet_files(source)
    scan = pl.scan_parquet(files, hive_partitioning=False)
    try:
        schema = scan.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot be read as Parquet: {str(exc).splitlines()[0]}", path=str(source)) from None
    mapping = resolve_scan_mapping(list(schema), stated or {}, str(source))
    sample = _collect(scan.select(mapping.time_col).drop_nulls().head(TIME_SAMPLE), str(source))
    values = None if mapping.event_col is None else _collect(scan.select(pl.col(mapping.event_col).unique()), str(source))
    plan = plan_scan(mapping, sample, values, now)
    return plan, canonical_events(scan.select(plan.source_columns()), plan)


@dataclass(frozen=True)
class EncodedEvents:
    """Rows as integer codes: `frame` has user_id and item_id (int32; codes from `users`/`items`, a
    missing item is `UNKNOWN_CODE`), timestamp (int64), event_type (int8; codes from `event_types`)
    and the extra columns asked for, in input order."""

    frame: pl.DataFrame
    users: pl.Series
    items: pl.Series
    event_types: tuple[str, ...]


def _sorted_distinct(canonical: pl.LazyFrame, column: str, source: str) -> pl.Series:
    return _collect(canonical.select(pl.col(column).drop_nulls().unique()), source).to_series().sort()


def encode_events(canonical: pl.LazyFrame, event_types: list[str], source: str, *extra: pl.Expr) -> EncodedEvents:
    """Two passes over `canonical` (its string ids and event types): the sorted distinct users and
    items, then every row as codes plus the `extra` columns, collected by the streaming engine."""
    users, items = _sorted_distinct(canonical, "user_id", source), _sorted_distinct(canonical, "item_id", source)
    narrow = canonical.select(
        _codes("user_id", users).alias("user_id"),
        _codes("item_id", items).fill_null(UNKNOWN_CODE).alias("item_id"),
        pl.col("timestamp"),
        _codes("event_type", event_types).cast(pl.Int8).alias("event_type"),
        *extra,
    )
    return EncodedEvents(_collect(narrow, source), users, items, tuple(event_types))


def reason_code() -> pl.Expr:
    """`reason` as a one-byte code (its position in `REASONS`), null for accepted rows."""
    return pl.col("reason").cast(pl.Enum(list(REASONS))).to_physical().cast(pl.UInt8)


def split_quarantine(frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, list[str]]:
    """Accepted rows of an encoded frame with a `reason_code` column (dropped), and the input position
    (from 0) and reason of every quarantined row."""
    codes = frame["reason"]
    if codes.null_count() == len(codes):
        return frame.drop("reason"), np.empty(0, dtype=np.int64), []
    positions = np.flatnonzero(codes.is_not_null().to_numpy())
    names = list(REASONS)
    reasons = [names[code] for code in codes.gather(positions).to_list()]
    return frame.filter(pl.col("reason").is_null()).drop("reason"), positions, reasons


def write_scan_report(out_dir: Path, source: str, plan: ScanPlan, rows_read: int, positions: np.ndarray,
                      reasons: list[str]) -> dict[str, int]:
    """`ingest_report.json` and `quarantine.csv` (each quarantined row as read, with its reason; `__row__`
    counts rows from 1 across the files in name order), as `ingest_files` writes them; returns the
    quarantine counts, most frequent first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counted = Counter(reasons)
    counts = dict(sorted(counted.items(), key=lambda pair: (-pair[1], pair[0])))
    write_ingest_report(out_dir, source=source, rows_read=rows_read, accepted=rows_read - len(reasons), quarantined=counts,
                        time_format=plan.time_format, time_resolution=plan.time_resolution,
                        event_type_mapping=plan.event_type_mapping)
    scan = pl.scan_parquet(parquet_files(source), hive_partitioning=False)
    rows = scan.select(string_columns(scan.collect_schema())).with_row_index("__row__", offset=1)
    by_row = dict(zip((positions + 1).tolist(), reasons))
    rows = rows.filter(pl.col("__row__").is_in(list(by_row))) if by_row else rows.head(0)
    reason = pl.col("__row__").replace_strict(by_row, default=None, return_dtype=pl.String)
    details = reason_details(plan.time_format)
    _collect(rows.select(
        pl.col("__row__").cast(pl.Int64), reason.alias("reason"),
        reason.replace_strict(details, default=None, return_dtype=pl.String).alias("detail"), pl.exclude("__row__"),
    ), source).write_csv(out_dir / "quarantine.csv")
    return counts
