"""Validation that loses nothing silently: every row is accepted or quarantined with its reason.

All checks are vectorised Polars expressions; a row gets the first reason in `REASONS` that applies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shopformer.data.io import RawTable, check_columns, read_table
from shopformer.data.mapping import EventMapping
from shopformer.data.schema import EventLog
from shopformer.data.timeparse import describe_format, parse_times

#: Longest id accepted: longer "ids" are pasted text or corrupt fields, not identifiers.
MAX_ID_LENGTH = 256
_NUMERIC_FIELDS = ("quantity", "value", "rating")

#: Quarantine reasons in the order they are checked, with the detail written beside each row.
REASONS: dict[str, str] = {
    "wrong_field_count": "the line has a different number of fields than the header (truncated or unquoted delimiter)",
    "missing_user_id": "the user id is empty",
    "missing_item_id": "the item id is empty (allowed only for search events)",
    "id_too_long": f"a user or item id is longer than {MAX_ID_LENGTH} characters",
    "missing_timestamp": "the time is empty",
    "unparsable_timestamp": "the time is not in the column's format",
    "implausible_timestamp": "the time is before the earliest plausible time (min_timestamp)",
    "future_timestamp": "the time is later than now + max_future_seconds",
    "unknown_event_type": "the event type is not known; map it with `event_types` in the config or --event-map raw=canonical",
    "invalid_number": "quantity, value or rating is not a number",
    "negative_quantity": "the quantity is negative",
    "duplicate_event_id": "an earlier row has the same event id",
}


@dataclass(frozen=True)
class IngestResult:
    """Accepted events, the quarantined rows with their reasons, and the counts that tie them together."""

    events: EventLog
    quarantine: pl.DataFrame
    rows_read: int
    source: str
    event_type_mapping: dict[str, str]
    time_format: str

    def summary(self) -> pl.DataFrame:
        """Rows per outcome ("accepted" and each quarantine reason), most frequent first."""
        counts = self.quarantine.group_by("reason").len("count")
        accepted = pl.DataFrame({"reason": ["accepted"], "count": [len(self.events)]}, schema=counts.schema)
        return pl.concat([accepted, counts.sort("count", "reason", descending=[True, False])])

    def counts(self) -> dict[str, int]:
        """`summary()` as a dict: outcome ("accepted" or a reason) -> rows."""
        return dict(self.summary().iter_rows())

    def write_report(self, out_dir: str | Path) -> None:
        """Write `quarantine.csv` (rows with their line number and reason) and `ingest_report.json`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.quarantine.write_csv(out / "quarantine.csv")
        counts = {reason: n for reason, n in self.counts().items() if reason != "accepted"}
        write_ingest_report(out, source=self.source, rows_read=self.rows_read, accepted=len(self.events),
                            quarantined=counts, time_format=self.time_format,
                            time_resolution=self.events.time_resolution, event_type_mapping=self.event_type_mapping)


def write_ingest_report(out_dir: Path, *, source: str, rows_read: int, accepted: int, quarantined: dict[str, int],
                        time_format: str, time_resolution: str, event_type_mapping: dict[str, str]) -> None:
    """`ingest_report.json`: where rows came from and how many were accepted or quarantined, by reason."""
    report = {"source": source, "rows_read": rows_read, "accepted": accepted, "quarantined": quarantined,
              "time_format": time_format, "time_resolution": time_resolution, "event_type_mapping": event_type_mapping}
    (out_dir / "ingest_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


def _wanted_columns(mapping: EventMapping) -> dict[str, str]:
    wanted = {"user_col": mapping.user_col, "item_col": mapping.item_col, "time_col": mapping.time_col}
    if mapping.event_col is not None:
        wanted["event_col"] = mapping.event_col
    wanted.update({f"{field}_col": col for field, col in mapping.optional_columns().items()})
    return wanted


def event_type_mapping(raw_types: pl.Series, mapping: EventMapping) -> dict[str, str]:
    """Raw value -> event type for the distinct values present (few, so a Python loop is fine)."""
    known = {}
    for value in raw_types.drop_nulls().unique().to_list():
        canonical = mapping.canonical_event(value)
        if canonical is not None and canonical in mapping.allowed_event_types():
            known[value] = canonical
    return known


def _canonical_frame(raw: RawTable, mapping: EventMapping) -> tuple[pl.DataFrame, dict[str, str], str, str]:
    frame = raw.frame
    timestamps, fmt = parse_times(frame[mapping.time_col], mapping.time_format)
    if mapping.event_col is None:
        events, type_map = pl.lit(mapping.default_event), {}
    else:
        type_map = event_type_mapping(frame[mapping.event_col], mapping)
        events = pl.col(mapping.event_col).replace_strict(type_map, default=None, return_dtype=pl.String)
    optional = {field: pl.col(col) for field, col in mapping.optional_columns().items()}
    canonical = frame.select(
        pl.col("__row__"), pl.col(mapping.user_col).alias("user_id"), pl.col(mapping.item_col).alias("item_id"),
        pl.col(mapping.time_col).alias("__time__"), timestamps, events.alias("event_type"),
        *(expr.alias(field) for field, expr in optional.items()),
    )
    return canonical, type_map, fmt, ("day" if fmt == "yyyymmdd" else "second")


def quarantine_reason(columns: Collection[str], mapping: EventMapping, now: int) -> pl.Expr:
    """The `reason` column: the first of `REASONS` a row of a canonical frame with `columns` fails, or null.

    The frame holds user_id, item_id, event_type, `__time__` (the raw time), timestamp (parsed) and
    the mapped optional fields as read; an expression, so a lazy (streaming) scan checks rows alike.
    """
    too_long = (pl.col("user_id").str.len_chars() > MAX_ID_LENGTH) | (pl.col("item_id").str.len_chars() > MAX_ID_LENGTH)
    numbers = [f for f in _NUMERIC_FIELDS if f in columns]
    bad_number = pl.lit(False)
    for field in numbers:
        bad_number = bad_number | (pl.col(field).is_not_null() & pl.col(field).cast(pl.Float64, strict=False).is_null())
    negative = pl.col("quantity").cast(pl.Float64, strict=False) < 0 if "quantity" in columns else pl.lit(False)
    duplicate = ~pl.col("event_id").is_first_distinct() & pl.col("event_id").is_not_null() if "event_id" in columns else pl.lit(False)
    checks = [
        ("missing_user_id", pl.col("user_id").is_null()),
        # A search is about a query, not an item: its item may be empty.
        ("missing_item_id", pl.col("item_id").is_null() & (pl.col("event_type").fill_null("") != "search")),
        ("id_too_long", too_long),
        ("missing_timestamp", pl.col("__time__").is_null()),
        ("unparsable_timestamp", pl.col("timestamp").is_null()),
        ("implausible_timestamp", pl.col("timestamp") < mapping.min_timestamp),
        ("future_timestamp", pl.col("timestamp") > now + mapping.max_future_seconds),
        ("unknown_event_type", pl.col("event_type").is_null()),
        ("invalid_number", bad_number),
        ("negative_quantity", negative),
        ("duplicate_event_id", duplicate),
    ]
    expr = pl.when(checks[0][1]).then(pl.lit(checks[0][0]))
    for reason, condition in checks[1:]:
        expr = expr.when(condition).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, dtype=pl.String)).alias("reason")


def _accepted_events(frame: pl.DataFrame, resolution: str) -> EventLog:
    casts = [pl.col(f).cast(pl.Float64) for f in _NUMERIC_FIELDS if f in frame.columns]
    accepted = frame.drop("__row__", "__time__", "reason").with_columns(casts)
    # Stable sort: events at the same time keep the file's order.
    return EventLog(accepted.sort("user_id", "timestamp", maintain_order=True), resolution)


def reason_details(fmt: str) -> dict[str, str]:
    """The detail written beside each quarantined row, by reason, for a time column in format `fmt`."""
    return {**REASONS, "unparsable_timestamp": f"{REASONS['unparsable_timestamp']} (expected {describe_format(fmt)})"}


def _quarantine(raw: RawTable, checked: pl.DataFrame, fmt: str) -> pl.DataFrame:
    details = reason_details(fmt)
    rejected = checked.filter(pl.col("reason").is_not_null()).select("__row__", "reason")
    rows = rejected.join(raw.frame, on="__row__", how="left")
    ragged = raw.ragged.with_columns(pl.lit("wrong_field_count").alias("reason"))
    table = pl.concat([rows, ragged], how="diagonal_relaxed").sort("__row__")
    detail = pl.col("reason").replace_strict(details, return_dtype=pl.String).alias("detail")
    return table.with_columns(detail).select("__row__", "reason", "detail", pl.exclude("__row__", "reason", "detail"))


def validate_events(raw: RawTable, mapping: EventMapping, *, now: int | None = None) -> IngestResult:
    """Split a raw table into accepted events (canonical columns and types) and quarantined rows."""
    check_columns(raw, _wanted_columns(mapping))
    now = int(time.time()) if now is None else now
    canonical, type_map, fmt, resolution = _canonical_frame(raw, mapping)
    checked = canonical.with_columns(quarantine_reason(canonical.columns, mapping, now))
    events = _accepted_events(checked.filter(pl.col("reason").is_null()), resolution)
    quarantine = _quarantine(raw, checked, fmt)
    return IngestResult(events, quarantine, raw.rows_read, raw.source, type_map, fmt)


def load_events(path: str | Path, mapping: EventMapping | None = None, *, now: int | None = None):
    """Read and validate an event file: an `IngestResult` with the accepted events and the quarantine."""
    mapping = mapping or EventMapping()
    raw = read_table(path, delimiter=mapping.delimiter, encoding=mapping.encoding)
    return validate_events(raw, mapping, now=now)
