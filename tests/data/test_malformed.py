"""Malformed event rows: every bad row is quarantined with its reason, and the report counts them.

Each test writes a tiny file and checks the exact count per quarantine reason and that no row is lost
(rows_read == accepted + quarantined).
"""

from __future__ import annotations

import json

import polars as pl

from shopformer.data.mapping import EventMapping
from shopformer.data.validate import load_events
from tests.data.ingest_cases import HEADER, NINE_AM, NOW, check, csv, rows_of, write

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
