"""Timestamps in the formats shops export, to unix seconds; one format per column, never guessed per row."""

from __future__ import annotations

import polars as pl

from shopformer.data.mapping import NAMED_TIME_FORMATS

_ISO_WITH_ZONE = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%:z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")
#: Values looked at to decide a column's format.
_SAMPLE = 2000
#: Spreadsheet-style times such as "2/24/2015 22:55" (month or day first, seconds optional).
_SLASHED = r"^(\d{1,2})/(\d{1,2})/\d{4} \d{1,2}:\d{2}(:\d{2})?$"

#: A readable example of each named format, for error details.
FORMAT_EXAMPLES = {
    "unix_s": "unix seconds such as 1709283600",
    "unix_ms": "unix milliseconds such as 1709283600000",
    "yyyymmdd": "a yyyymmdd date such as 20240301",
    "iso8601": "an ISO-8601 time such as 2024-03-01T09:00:00Z",
    "%m/%d/%Y %H:%M": "a month/day/year time such as 2/24/2015 22:55",
    "%d/%m/%Y %H:%M": "a day/month/year time such as 24/2/2015 22:55",
    "%m/%d/%Y %H:%M:%S": "a month/day/year time such as 2/24/2015 22:55:08",
    "%d/%m/%Y %H:%M:%S": "a day/month/year time such as 24/2/2015 22:55:08",
}


def _kind_of(values: pl.Series) -> pl.Series:
    """The format each raw value looks like (vectorised), used only to vote on the column's format."""
    v = values.str.strip_chars()
    return (
        pl.select(
            pl.when(v.str.contains(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")).then(pl.lit("yyyymmdd"))
            .when(v.str.contains(r"^-?\d{9,11}(\.\d+)?$")).then(pl.lit("unix_s"))
            .when(v.str.contains(r"^\d{12,14}(\.\d+)?$")).then(pl.lit("unix_ms"))
            .when(v.str.contains(_SLASHED)).then(pl.lit("slashed"))
            .otherwise(pl.lit("iso8601"))
        ).to_series()
    )


def _slashed_pattern(values: pl.Series) -> str:
    """Month or day first, decided for the whole column: a first number above 12 can only be a day.

    Month first (the US spreadsheet default) unless more values prove day first than month first.
    """
    parts = values.str.strip_chars().str.extract_groups(_SLASHED)
    first, second = (parts.struct.field(k).cast(pl.Int32) for k in ("1", "2"))
    day_first = int((first > 12).sum()) > int((second > 12).sum())
    with_seconds = parts.struct.field("3").is_not_null().mean() > 0.5
    return ("%d/%m/%Y" if day_first else "%m/%d/%Y") + (" %H:%M:%S" if with_seconds else " %H:%M")


def detect_format(values: pl.Series) -> str:
    """The format most of the column's non-empty values are written in (a strftime pattern for slashed dates)."""
    sample = values.drop_nulls().head(_SAMPLE)
    if sample.is_empty():
        return "iso8601"
    kinds = _kind_of(sample)
    kind = kinds.mode().sort()[0]
    return _slashed_pattern(sample.filter(kinds == "slashed")) if kind == "slashed" else kind


def _parse_iso(values: pl.Series) -> pl.Series:
    # "Z", or a trailing "UTC"/"GMT" word as REES46 and many database dumps write it, is UTC.
    text = values.str.strip_chars().str.replace(r"(Z| ?UTC| ?GMT)$", "+00:00")
    parsed = [text.str.strptime(pl.Datetime("us", "UTC"), f, strict=False).dt.epoch("s") for f in _ISO_WITH_ZONE]
    # Times without a zone are taken as UTC, the only reading that is the same on every machine.
    parsed += [text.str.strptime(pl.Datetime("us"), f, strict=False).dt.epoch("s") for f in _ISO_NAIVE]
    parsed.append(text.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Int64) * 86_400)
    return pl.select(pl.coalesce(parsed)).to_series()


def _parse_numeric(values: pl.Series, divisor: int) -> pl.Series:
    number = values.str.strip_chars().cast(pl.Float64, strict=False)
    return (number / divisor).floor().cast(pl.Int64, strict=False)


def _parse_pattern(values: pl.Series, pattern: str) -> pl.Series:
    dtype = pl.Datetime("us", "UTC") if "%z" in pattern or "%:z" in pattern else pl.Datetime("us")
    return values.str.strip_chars().str.strptime(dtype, pattern, strict=False).dt.epoch("s")


def parse_times(values: pl.Series, time_format: str) -> tuple[pl.Series, str]:
    """Unix seconds (Int64, null where a value does not parse) and the format that was used.

    `time_format` is one of `NAMED_TIME_FORMATS` or a strftime pattern. With "auto" the format is
    decided once for the whole column; values written differently become null, and the caller
    quarantines them, because mixing seconds and milliseconds silently would corrupt the order.
    """
    fmt = detect_format(values) if time_format == "auto" else time_format
    if fmt == "unix_s":
        seconds = _parse_numeric(values, 1)
    elif fmt == "unix_ms":
        seconds = _parse_numeric(values, 1000)
    elif fmt == "yyyymmdd":
        seconds = values.str.strip_chars().str.strptime(pl.Date, "%Y%m%d", strict=False).cast(pl.Int64) * 86_400
    elif fmt == "iso8601":
        seconds = _parse_iso(values)
    else:
        seconds = _parse_pattern(values, fmt)
    if fmt in ("unix_s", "unix_ms"):
        # A value of another shape (e.g. an ISO time) must not slip through the numeric cast.
        seconds = pl.select(pl.when(_kind_of(values) == fmt).then(seconds)).to_series()
    return seconds.alias("timestamp"), fmt


def describe_format(fmt: str) -> str:
    """Human wording of a format for messages."""
    return FORMAT_EXAMPLES.get(fmt, f"a time matching the pattern {fmt!r}")


__all__ = ["NAMED_TIME_FORMATS", "describe_format", "detect_format", "parse_times"]
