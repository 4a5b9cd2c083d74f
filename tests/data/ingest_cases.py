"""Tiny event files for the ingestion tests, and checks of what became of their rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from shopformer.data.mapping import EventMapping
from shopformer.data.validate import IngestResult, load_events
from shopformer.errors import DataError

HEADER = "user_id,item_id,timestamp,event_type"

# 2024-03-01 is day 19_783 after 1970-01-01 (54 years, 13 leap days: 54*365 + 13 + 31 + 29 = 19_783).
MARCH_1_2024 = 19_783 * 86_400  # 1_709_251_200, midnight UTC
NINE_AM = MARCH_1_2024 + 9 * 3_600  # 2024-03-01T09:00:00Z = 1_709_283_600
#: A fixed "read time" so that future-timestamp checks do not depend on the clock.
NOW = 1_750_000_000


def write(tmp_path: Path, text: str | bytes, name: str = "events.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def reason_counts(result: IngestResult) -> dict[str, int]:
    counts = result.quarantine.group_by("reason").len()
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))


def check(result: IngestResult, *, rows: int, quarantined: dict[str, int]) -> None:
    """Exact counts per reason, and every row read is either accepted or quarantined."""
    assert reason_counts(result) == quarantined
    assert result.rows_read == rows
    assert result.rows_read == len(result.events) + result.quarantine.height
    assert len(result.events) == rows - sum(quarantined.values())
    summary = dict(result.summary().iter_rows())
    assert summary == {"accepted": len(result.events), **quarantined}


def rows_of(result: IngestResult, reason: str) -> list[int]:
    """The file line numbers (header = line 1) quarantined for `reason`."""
    return sorted(result.quarantine.filter(pl.col("reason") == reason)["__row__"].to_list())


def data_error(path: Path, mapping: EventMapping | None = None) -> str:
    with pytest.raises(DataError) as caught:
        load_events(path, mapping, now=NOW)
    message = str(caught.value)
    assert str(path) in message, message
    return message
