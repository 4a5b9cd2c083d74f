"""Reading event files: time formats, file types and delimiters, and one clear `DataError` naming the
file for a file that cannot be read at all."""

from __future__ import annotations

import gzip
import json

import polars as pl

from shopformer.data.io import read_table
from shopformer.data.mapping import EventMapping
from shopformer.data.validate import load_events
from tests.data.ingest_cases import HEADER, MARCH_1_2024, NINE_AM, NOW, check, csv, data_error, rows_of, write

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


def test_a_trailing_utc_or_gmt_word_is_utc(tmp_path):
    # REES46 writes "2019-10-01 00:00:00 UTC"; database dumps often write "... UTC" or "...GMT".
    path = write(tmp_path, csv(
        "u1,i1,2024-03-01 09:00:00 UTC,view",
        "u2,i1,2024-03-01 09:00:00UTC,view",
        "u3,i1,2024-03-01 09:00:00 GMT,view",
        "u4,i1,2024-03-01 09:00:00 CET,view",   # a zone name that is not UTC: quarantined, never guessed
    ))
    result = load_events(path, now=NOW)
    check(result, rows=4, quarantined={"unparsable_timestamp": 1})
    assert set(result.events.frame["timestamp"].to_list()) == {1_709_283_600}


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
