"""Malformed event files: every bad row is quarantined with its reason, every bad file is a clear error.

Each test writes a tiny file and checks the exact count per quarantine reason, that no row is lost
(rows_read == accepted + quarantined), or the wording of the file-level `DataError`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from shopformer.data.io import read_table
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


# --- row-level problems: quarantined with a reason ---------------------------------------------


def test_truncated_last_line_is_wrong_field_count(tmp_path):
    # The export was cut off in the middle of the last row (no trailing newline either).
    path = write(tmp_path, f"{HEADER}\nu1,i1,{NINE_AM},view\nu1,i2,{NINE_AM + 60},view\nu2,i3,17092")
    result = load_events(path, now=NOW)
    check(result, rows=3, quarantined={"wrong_field_count": 1})
    assert rows_of(result, "wrong_field_count") == [4]
    assert result.events.frame["item_id"].to_list() == ["i1", "i2"]


def test_extra_field_from_unquoted_delimiter_is_wrong_field_count(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM},view", f"u1,i,2,{NINE_AM + 1},view", f'u2,"i,3",{NINE_AM},view'))
    result = load_events(path, now=NOW)
    check(result, rows=3, quarantined={"wrong_field_count": 1})
    assert rows_of(result, "wrong_field_count") == [3]
    # A quoted delimiter is part of the value, not a field separator.
    assert sorted(result.events.frame["item_id"].to_list()) == ["i,3", "i1"]


def test_quotes_escaped_literal_and_unterminated(tmp_path):
    path = write(tmp_path, csv(
        f'u1,"say ""hi""",{NINE_AM},view',       # "" inside a quoted field is one quote
        f'u2,12" vinyl,{NINE_AM},view',           # a quote inside an unquoted field is a character
        f'u3,"unterminated,{NINE_AM},view',       # the quote never closes: one stray row, not a dead file
        f"u4,i4,{NINE_AM},view",
    ))
    result = load_events(path, now=NOW)
    check(result, rows=4, quarantined={"wrong_field_count": 1})
    assert rows_of(result, "wrong_field_count") == [4]
    assert result.events.frame["item_id"].to_list() == ['say "hi"', '12" vinyl', "i4"]


def test_missing_ids_and_time_are_quarantined_first_reason_wins(tmp_path):
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},view",
        f",i2,{NINE_AM},view",      # no user
        f"u3,,{NINE_AM},view",      # no item
        f",,{NINE_AM},view",        # neither: the user is checked first
        "u5,i5,,view",              # no time
        f"u6,i6,{NINE_AM},view",
    ))
    result = load_events(path, now=NOW)
    check(result, rows=6, quarantined={"missing_user_id": 2, "missing_item_id": 1, "missing_timestamp": 1})
    assert rows_of(result, "missing_user_id") == [3, 5]
    assert rows_of(result, "missing_item_id") == [4]
    assert rows_of(result, "missing_timestamp") == [6]
    assert result.events.frame["user_id"].to_list() == ["u1", "u6"]


def test_ids_longer_than_256_characters_are_quarantined(tmp_path):
    longest_ok, too_long = "u" * 256, "x" * 257
    path = write(tmp_path, csv(
        f"{longest_ok},i1,{NINE_AM},view",
        f"{too_long},i2,{NINE_AM},view",
        f"u3,{'i' * 5000},{NINE_AM},view",
        f"u4,i4,{NINE_AM},view",
    ))
    result = load_events(path, now=NOW)
    check(result, rows=4, quarantined={"id_too_long": 2})
    assert rows_of(result, "id_too_long") == [3, 4]
    assert sorted(result.events.frame["user_id"].to_list()) == ["u4", longest_ok]


def test_mixed_timestamp_formats_quarantine_the_minority(tmp_path):
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},view",
        f"u1,i2,{NINE_AM + 60},view",
        f"u1,i3,{NINE_AM + 120},view",
        f"u2,i4,{NINE_AM + 180},view",
        f"u2,i5,{(NINE_AM + 240) * 1000},view",    # milliseconds in a seconds column
        "u2,i6,2024-03-01T09:05:00Z,view",          # ISO text in a seconds column
        "u3,i7,yesterday,view",                     # not a time at all
    ))
    result = load_events(path, now=NOW)
    assert result.time_format == "unix_s"
    check(result, rows=7, quarantined={"unparsable_timestamp": 3})
    assert rows_of(result, "unparsable_timestamp") == [6, 7, 8]
    assert result.events.frame["timestamp"].to_list() == [NINE_AM, NINE_AM + 60, NINE_AM + 120, NINE_AM + 180]


def test_future_and_implausible_timestamps_against_now(tmp_path):
    mapping = EventMapping()
    limit = NOW + mapping.max_future_seconds
    path = write(tmp_path, csv(
        f"u1,i1,{limit},view",                          # exactly at the limit: accepted
        f"u1,i2,{limit + 1},view",                      # one second later: future
        f"u1,i3,{NOW + 10 * 86_400},view",              # future
        f"u2,i4,{mapping.min_timestamp},view",          # 1995-01-01: accepted
        f"u2,i5,{mapping.min_timestamp - 1},view",      # before 1995: implausible
        "u2,i6,100000000,view",                         # 1973: implausible
        f"u3,i7,{NOW},view",
    ))
    result = load_events(path, mapping, now=NOW)
    check(result, rows=7, quarantined={"future_timestamp": 2, "implausible_timestamp": 2})
    assert rows_of(result, "future_timestamp") == [3, 4]
    assert rows_of(result, "implausible_timestamp") == [6, 7]
    assert sorted(result.events.frame["item_id"].to_list()) == ["i1", "i4", "i7"]


def test_future_and_implausible_bounds_follow_the_mapping(tmp_path):
    mapping = EventMapping(max_future_seconds=0, min_timestamp=NINE_AM)
    path = write(tmp_path, csv(
        f"u1,i1,{NOW},view", f"u1,i2,{NOW + 1},view", f"u1,i3,{NINE_AM},view", f"u1,i4,{NINE_AM - 1},view",
    ))
    result = load_events(path, mapping, now=NOW)
    check(result, rows=4, quarantined={"future_timestamp": 1, "implausible_timestamp": 1})
    assert rows_of(result, "future_timestamp") == [3]
    assert rows_of(result, "implausible_timestamp") == [5]


def test_unknown_event_types_are_quarantined_then_fixed_by_a_mapping(tmp_path):
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},pv",            # a known synonym of view
        f"u1,i2,{NINE_AM + 1},teleport",
        f"u1,i3,{NINE_AM + 2},buy",       # a known synonym of purchase
        f"u2,i4,{NINE_AM + 3},teleport",
        f"u2,i5,{NINE_AM + 4},wormhole",
        f"u2,i6,{NINE_AM + 5},Purchase",  # case does not matter
    ))
    result = load_events(path, now=NOW)
    check(result, rows=6, quarantined={"unknown_event_type": 3})
    assert rows_of(result, "unknown_event_type") == [3, 5, 6]
    assert result.events.frame["event_type"].to_list() == ["view", "purchase", "purchase"]

    fixed = load_events(path, EventMapping(event_types={"teleport": "view", "wormhole": "cart"}), now=NOW)
    check(fixed, rows=6, quarantined={})
    assert fixed.events.event_counts() == {"view": 3, "purchase": 2, "cart": 1}
    assert fixed.event_type_mapping["teleport"] == "view"
    assert fixed.event_type_mapping["wormhole"] == "cart"
    assert fixed.event_type_mapping["pv"] == "view"


def test_negative_and_non_numeric_quantities(tmp_path):
    mapping = EventMapping(quantity_col="qty", value_col="price")
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},purchase,2,9.99",
        f"u1,i2,{NINE_AM + 1},purchase,-1,9.99",     # a return / cancellation
        f"u1,i3,{NINE_AM + 2},purchase,two,9.99",    # not a number
        f"u2,i4,{NINE_AM + 3},purchase,1,free",      # price not a number
        f"u2,i5,{NINE_AM + 4},purchase,-3,abc",      # both: invalid_number is checked first
        f"u2,i6,{NINE_AM + 5},purchase,1.5,0",
        header=f"{HEADER},qty,price",
    ))
    result = load_events(path, mapping, now=NOW)
    check(result, rows=6, quarantined={"invalid_number": 3, "negative_quantity": 1})
    assert rows_of(result, "invalid_number") == [4, 5, 6]
    assert rows_of(result, "negative_quantity") == [3]
    frame = result.events.frame
    assert frame.schema["quantity"] == pl.Float64 and frame.schema["value"] == pl.Float64
    assert frame["quantity"].to_list() == [2.0, 1.5]
    assert frame["value"].to_list() == [9.99, 0.0]


def test_duplicate_event_ids_keep_the_first(tmp_path):
    mapping = EventMapping(event_id_col="eid")
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},view,e1",
        f"u1,i2,{NINE_AM + 1},view,e2",
        f"u1,i3,{NINE_AM + 2},view,e1",
        f"u2,i4,{NINE_AM + 3},view,e1",
        f"u2,i5,{NINE_AM + 4},view,e3",
        f"u2,i6,{NINE_AM + 5},view,e2",
        header=f"{HEADER},eid",
    ))
    result = load_events(path, mapping, now=NOW)
    check(result, rows=6, quarantined={"duplicate_event_id": 3})
    assert rows_of(result, "duplicate_event_id") == [4, 5, 7]
    frame = result.events.frame
    assert frame["event_id"].to_list() == ["e1", "e2", "e3"]
    assert frame["item_id"].to_list() == ["i1", "i2", "i5"]


def test_quarantine_keeps_the_raw_values_line_numbers_and_a_detail(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM},view", f",i2,{NINE_AM},view", "u3,i3,soon,view"))
    result = load_events(path, now=NOW)
    check(result, rows=3, quarantined={"missing_user_id": 1, "unparsable_timestamp": 1})
    quarantine = result.quarantine.sort("__row__")
    assert quarantine.columns[:3] == ["__row__", "reason", "detail"]
    assert {"user_id", "item_id", "timestamp", "event_type"} <= set(quarantine.columns)
    assert quarantine["__row__"].to_list() == [3, 4]
    assert quarantine["reason"].to_list() == ["missing_user_id", "unparsable_timestamp"]
    assert quarantine["item_id"].to_list() == ["i2", "i3"]
    assert quarantine["timestamp"].to_list() == [str(NINE_AM), "soon"]
    assert quarantine["detail"].is_not_null().all()


# --- time formats ------------------------------------------------------------------------------


def test_unix_milliseconds_become_seconds(tmp_path):
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM}123,view",          # 1_709_283_600_123 ms
        f"u1,i2,{NINE_AM + 59}999,view",     # 1_709_283_659_999 ms: the millis are dropped
    ))
    result = load_events(path, now=NOW)
    check(result, rows=2, quarantined={})
    assert result.time_format == "unix_ms"
    assert result.events.time_resolution == "second"
    assert result.events.frame["timestamp"].to_list() == [1_709_283_600, 1_709_283_659]


def test_explicit_unix_ms_format(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM * 1000},view", f"u1,i2,{NINE_AM * 1000 + 1500},view", "u1,i3,later,view"))
    result = load_events(path, EventMapping(time_format="unix_ms"), now=NOW)
    check(result, rows=3, quarantined={"unparsable_timestamp": 1})
    assert result.time_format == "unix_ms"
    assert result.events.frame["timestamp"].to_list() == [NINE_AM, NINE_AM + 1]


def test_yyyymmdd_dates_are_day_resolution(tmp_path):
    path = write(tmp_path, csv(
        "u1,i1,20240301,view",
        "u1,i2,20240229,view",       # leap day
        "u1,i3,20241301,view",       # no month 13
        "u2,i4,20240302,view",
    ))
    result = load_events(path, now=NOW)
    check(result, rows=4, quarantined={"unparsable_timestamp": 1})
    assert rows_of(result, "unparsable_timestamp") == [4]
    assert result.time_format == "yyyymmdd"
    assert result.events.time_resolution == "day"
    frame = result.events.frame
    assert frame["item_id"].to_list() == ["i2", "i1", "i4"]
    assert frame["timestamp"].to_list() == [MARCH_1_2024 - 86_400, MARCH_1_2024, MARCH_1_2024 + 86_400]
    assert MARCH_1_2024 == 1_709_251_200


def test_iso8601_with_z_and_offsets(tmp_path):
    # The same instant, 2024-03-01 09:00:00 UTC, written four ways; then two other instants.
    path = write(tmp_path, csv(
        "u1,i1,2024-03-01T09:00:00Z,view",
        "u2,i1,2024-03-01T10:00:00+01:00,view",
        "u3,i1,2024-03-01T04:00:00-05:00,view",
        "u4,i1,2024-03-01T14:30:00+05:30,view",
        "u5,i1,2024-02-29T23:59:59Z,view",
        "u6,i1,2024-03-01T00:30:00+02:00,view",     # 2024-02-29 22:30 UTC
    ))
    result = load_events(path, now=NOW)
    check(result, rows=6, quarantined={})
    assert result.time_format == "iso8601"
    assert result.events.time_resolution == "second"
    stamps = dict(result.events.frame.select("user_id", "timestamp").iter_rows())
    assert stamps == {
        "u1": 1_709_283_600, "u2": 1_709_283_600, "u3": 1_709_283_600, "u4": 1_709_283_600,
        "u5": MARCH_1_2024 - 1, "u6": MARCH_1_2024 - 90 * 60,
    }


def test_strftime_pattern_time_format(tmp_path):
    path = write(tmp_path, csv("u1,i1,03/01/2024 09:00,view", "u1,i2,2024-03-01 09:00,view"))
    result = load_events(path, EventMapping(time_format="%m/%d/%Y %H:%M"), now=NOW)
    check(result, rows=2, quarantined={"unparsable_timestamp": 1})
    assert result.events.frame["timestamp"].to_list() == [NINE_AM]


def test_events_are_sorted_by_user_then_time(tmp_path):
    path = write(tmp_path, csv(
        f"u2,a,{NINE_AM + 30},view",
        f"u1,b,{NINE_AM + 20},view",
        f"u2,c,{NINE_AM + 10},cart",
        f"u1,d,{NINE_AM + 5},view",
        f"u3,e,{NINE_AM},purchase",
        f"u1,f,{NINE_AM + 50},purchase",
    ))
    result = load_events(path, now=NOW)
    check(result, rows=6, quarantined={})
    frame = result.events.frame
    assert frame.columns[:4] == ["user_id", "item_id", "timestamp", "event_type"]
    assert frame.schema["user_id"] == pl.String and frame.schema["item_id"] == pl.String
    assert frame.schema["timestamp"] == pl.Int64 and frame.schema["event_type"] == pl.String
    assert frame["user_id"].to_list() == ["u1", "u1", "u1", "u2", "u2", "u3"]
    assert frame["item_id"].to_list() == ["d", "b", "f", "c", "a", "e"]


def test_no_event_column_uses_the_default_event(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM}", f"u1,i2,{NINE_AM + 1}", header="user_id,item_id,timestamp"))
    result = load_events(path, EventMapping(event_col=None, default_event="purchase"), now=NOW)
    check(result, rows=2, quarantined={})
    assert result.events.frame["event_type"].to_list() == ["purchase", "purchase"]


def test_windows_line_endings(tmp_path):
    text = csv(f"u1,i1,{NINE_AM},view", f"u1,i2,{NINE_AM + 1},cart", "u2,i3").replace("\n", "\r\n")
    result = load_events(write(tmp_path, text.encode()), now=NOW)
    check(result, rows=3, quarantined={"wrong_field_count": 1})
    frame = result.events.frame
    assert frame["event_type"].to_list() == ["view", "cart"]  # no stray '\r' on the last field
    assert frame["timestamp"].to_list() == [NINE_AM, NINE_AM + 1]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    # Spreadsheet "CSV UTF-8" exports start with a byte-order mark.
    path = write(tmp_path, b"\xef\xbb\xbf" + csv(f"u1,i1,{NINE_AM},view").encode())
    result = load_events(path, now=NOW)
    check(result, rows=1, quarantined={})
    assert result.events.frame["user_id"].to_list() == ["u1"]


def test_blank_ids_count_as_missing(tmp_path):
    path = write(tmp_path, csv(f"  ,i1,{NINE_AM},view", f"u2, ,{NINE_AM},view", f" u3 , i3 ,{NINE_AM},view"))
    result = load_events(path, now=NOW)
    check(result, rows=3, quarantined={"missing_user_id": 1, "missing_item_id": 1})
    assert result.events.frame.select("user_id", "item_id").row(0) == ("u3", "i3")


# --- the same content in CSV, Parquet and JSON Lines ---------------------------------------------


def test_csv_parquet_and_jsonl_give_equal_events(tmp_path):
    table = pl.DataFrame({
        "user_id": ["u2", "u1", "u1", "u2", "u3"],
        "item_id": ["i9", "i1", "i2", "i1", "i5"],
        "timestamp": [NINE_AM + 5, NINE_AM + 1, NINE_AM, NINE_AM, NINE_AM + 7],
        "event_type": ["view", "cart", "view", "purchase", "view"],
    })
    table.write_csv(tmp_path / "events.csv")
    table.write_parquet(tmp_path / "events.parquet")
    table.write_ndjson(tmp_path / "events.jsonl")
    results = {name: load_events(tmp_path / name, now=NOW) for name in ("events.csv", "events.parquet", "events.jsonl")}
    for result in results.values():
        check(result, rows=5, quarantined={})
        assert result.time_format == "unix_s"
    from_csv = results["events.csv"].events.frame
    assert from_csv["item_id"].to_list() == ["i2", "i1", "i1", "i9", "i5"]
    assert from_csv.equals(results["events.parquet"].events.frame)
    assert from_csv.equals(results["events.jsonl"].events.frame)


def test_bad_rows_in_parquet_and_jsonl_are_quarantined_with_their_row(tmp_path):
    table = pl.DataFrame({
        "user_id": ["u1", None, "u3"], "item_id": ["i1", "i2", "i3"],
        "timestamp": [str(NINE_AM), str(NINE_AM), "not a time"], "event_type": ["view", "view", "view"],
    })
    table.write_parquet(tmp_path / "events.parquet")
    table.write_ndjson(tmp_path / "events.jsonl")
    for name in ("events.parquet", "events.jsonl"):
        result = load_events(tmp_path / name, now=NOW)
        check(result, rows=3, quarantined={"missing_user_id": 1, "unparsable_timestamp": 1})
        assert result.events.frame["user_id"].to_list() == ["u1"]


def test_tab_and_semicolon_delimiters_are_detected(tmp_path):
    for name, sep in (("events.tsv", "\t"), ("events_semicolon.csv", ";")):
        text = "\n".join(line.replace(",", sep) for line in csv(f"u1,i1,{NINE_AM},view", f"u2,i2,{NINE_AM},view").splitlines())
        result = load_events(write(tmp_path, text + "\n", name), now=NOW)
        check(result, rows=2, quarantined={})


# --- file-level problems: one clear DataError naming the file -----------------------------------


def test_file_not_found(tmp_path):
    message = data_error(tmp_path / "nope.csv")
    assert "not found" in message


def test_empty_file(tmp_path):
    message = data_error(write(tmp_path, b""))
    assert "empty" in message


def test_header_only(tmp_path):
    assert "no data rows" in data_error(write(tmp_path, HEADER + "\n"))
    assert "no data rows" in data_error(write(tmp_path, HEADER + "\n\n\n", "blank_lines.csv"))
    assert "no data rows" in data_error(write(tmp_path, HEADER, "no_newline.csv"))


def test_binary_garbage(tmp_path):
    # A gzipped file that kept the .csv name.
    message = data_error(write(tmp_path, gzip.compress(csv(f"u1,i1,{NINE_AM},view").encode() * 50)))
    assert "binary" in message


def test_invalid_utf8_names_the_row_and_suggests_latin1(tmp_path):
    content = csv(f"u1,i1,{NINE_AM},view", f"u2,caf\xe9,{NINE_AM},view").encode("latin-1")
    path = write(tmp_path, content)
    message = data_error(path)
    assert "row 3" in message
    assert "latin-1" in message

    result = load_events(path, EventMapping(encoding="latin-1"), now=NOW)
    check(result, rows=2, quarantined={})
    assert result.events.frame["item_id"].to_list() == ["i1", "café"]


def test_missing_column_names_it_and_lists_the_columns(tmp_path):
    path = write(tmp_path, csv("u1,i1,view", header="user_id,item_id,event_type"))
    message = data_error(path)
    assert "'timestamp'" in message
    for present in ("user_id", "item_id", "event_type"):
        assert present in message

    renamed = write(tmp_path, csv(f"u1,i1,{NINE_AM},view", header="customer,item_id,timestamp,event_type"), "renamed.csv")
    message = data_error(renamed)
    assert "'user_id'" in message and "customer" in message
    result = load_events(renamed, EventMapping(user_col="customer"), now=NOW)
    check(result, rows=1, quarantined={})


def test_mapped_optional_column_missing(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM},view"))
    message = data_error(path, EventMapping(quantity_col="qty"))
    assert "'qty'" in message


def test_wrong_stated_delimiter_is_hinted(tmp_path):
    path = write(tmp_path, csv(f"u1;i1;{NINE_AM};view", header="user_id;item_id;timestamp;event_type"))
    message = data_error(path, EventMapping(delimiter=","))
    assert "user_id" in message
    assert "';'" in message
    # Read with its real delimiter (stated or detected) the file is fine.
    check(load_events(path, EventMapping(delimiter=";"), now=NOW), rows=1, quarantined={})
    check(load_events(path, now=NOW), rows=1, quarantined={})


def test_unsupported_extension(tmp_path):
    path = write(tmp_path, b"PK\x03\x04 not really a workbook", "events.xlsx")
    assert "xlsx" in data_error(path).replace(str(path), "")


def test_corrupt_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    pl.DataFrame({"user_id": ["u1"] * 100, "item_id": ["i1"] * 100, "timestamp": [NINE_AM] * 100,
                  "event_type": ["view"] * 100}).write_parquet(good)
    data = good.read_bytes()
    broken = write(tmp_path, data[: len(data) // 2], "events.parquet")
    assert "parquet" in data_error(broken).replace(str(broken), "").lower()
    not_parquet = write(tmp_path, csv(f"u1,i1,{NINE_AM},view"), "text.parquet")
    assert "parquet" in data_error(not_parquet).replace(str(not_parquet), "").lower()


def test_malformed_json_line_names_the_row(tmp_path):
    good = json.dumps({"user_id": "u1", "item_id": "i1", "timestamp": NINE_AM, "event_type": "view"})
    path = write(tmp_path, f'{good}\n{good}\n{{"user_id": "u2", "item_id": \n{good}\n', "events.jsonl")
    message = data_error(path)
    assert "row 3" in message


def test_read_table_line_numbers_and_ragged_lines(tmp_path):
    path = write(tmp_path, csv(f"u1,i1,{NINE_AM},view", "u2,i2", f"u3,i3,{NINE_AM},view,extra", f"u4,i4,{NINE_AM},view"))
    raw = read_table(path)
    assert raw.frame["__row__"].to_list() == [2, 5]
    assert raw.frame.schema["__row__"] == pl.Int64
    assert all(raw.frame.schema[c] == pl.String for c in ("user_id", "item_id", "timestamp", "event_type"))
    assert raw.frame["timestamp"].to_list() == [str(NINE_AM)] * 2
    assert raw.ragged["__row__"].to_list() == [3, 4]
    assert raw.ragged["__line__"].to_list() == ["u2,i2", f"u3,i3,{NINE_AM},view,extra"]


# --- the report --------------------------------------------------------------------------------


def test_write_report_counts(tmp_path):
    path = write(tmp_path, csv(
        f"u1,i1,{NINE_AM},view",
        f",i2,{NINE_AM},view",
        f"u3,i3,{NINE_AM},teleport",
        f"u4,i4,{NINE_AM},pv",
        f"u5,i5,{NINE_AM}",
        f",i6,{NINE_AM},view",
    ))
    result = load_events(path, now=NOW)
    quarantined = {"missing_user_id": 2, "unknown_event_type": 1, "wrong_field_count": 1}
    check(result, rows=6, quarantined=quarantined)

    out = tmp_path / "report"
    result.write_report(out)
    report = json.loads((out / "ingest_report.json").read_text(encoding="utf-8"))
    assert report["source"] == str(path)
    assert report["rows_read"] == 6
    assert report["accepted"] == 2
    assert report["quarantined"] == quarantined
    assert report["rows_read"] == report["accepted"] + sum(report["quarantined"].values())
    assert report["time_format"] == "unix_s"
    assert report["event_type_mapping"]["view"] == "view"
    assert report["event_type_mapping"]["pv"] == "view"
    assert report["event_type_mapping"].get("teleport") is None

    written = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    assert written.height == 4
    assert written.columns[:3] == ["__row__", "reason", "detail"]
    assert sorted(int(r) for r in written["__row__"]) == [3, 4, 6, 7]
    assert dict(zip(written["__row__"].cast(pl.Int64).to_list(), written["reason"].to_list())) == {
        3: "missing_user_id", 4: "unknown_event_type", 6: "wrong_field_count", 7: "missing_user_id",
    }


def test_write_report_with_nothing_quarantined(tmp_path):
    result = load_events(write(tmp_path, csv(f"u1,i1,{NINE_AM},view")), now=NOW)
    out = tmp_path / "report"
    result.write_report(out)
    report = json.loads((out / "ingest_report.json").read_text(encoding="utf-8"))
    assert (report["rows_read"], report["accepted"], report["quarantined"]) == (1, 1, {})
    assert (out / "quarantine.csv").exists()


def test_stray_quote_before_a_quoted_field_keeps_the_row(tmp_path):
    path = write(tmp_path, csv(
        f'u1,12" vinyl,{NINE_AM},"view"',         # the stray quote must not pair with the next field's
        f'u2,"a,b",{NINE_AM},view',
    ))
    result = load_events(path, now=NOW)
    check(result, rows=2, quarantined={})
    assert sorted(result.events.frame["item_id"].to_list()) == ['12" vinyl', "a,b"]
