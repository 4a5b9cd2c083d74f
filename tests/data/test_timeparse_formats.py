"""Spreadsheet-style `M/D/YYYY H:MM` times, detected per column, and a fraud-style export read end to end.

The e-commerce fraud data writes `2/24/2015 22:55` (no zero padding, month first), starts with a
byte-order mark, ends lines with CRLF, and its last line was cut off upstream.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from shopformer.data.ingest import ingest_files
from shopformer.data.timeparse import describe_format, detect_format, parse_times


def _unix(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def test_month_first_without_padding_is_detected_and_parsed():
    values = pl.Series(["2/24/2015 22:55", "4/18/2015 2:47", "12/1/2015 10:05"])
    seconds, fmt = parse_times(values, "auto")
    assert fmt == "%m/%d/%Y %H:%M"
    assert seconds.to_list() == [_unix(2015, 2, 24, 22, 55), _unix(2015, 4, 18, 2, 47), _unix(2015, 12, 1, 10, 5)]
    assert "2/24/2015 22:55" in describe_format(fmt)


def test_day_first_when_a_first_number_can_only_be_a_day():
    # 3/4 alone is ambiguous; 24/2 settles the column as day first.
    seconds, fmt = parse_times(pl.Series(["3/4/2015 9:00", "24/2/2015 22:55"]), "auto")
    assert fmt == "%d/%m/%Y %H:%M"
    assert seconds.to_list() == [_unix(2015, 4, 3, 9), _unix(2015, 2, 24, 22, 55)]


def test_seconds_are_kept_when_the_column_has_them():
    seconds, fmt = parse_times(pl.Series(["1/2/2015 3:04:05", "1/2/2015 3:04:06"]), "auto")
    assert fmt == "%m/%d/%Y %H:%M:%S"
    assert seconds.to_list() == [_unix(2015, 1, 2, 3, 4, 5), _unix(2015, 1, 2, 3, 4, 6)]


def test_other_shapes_in_the_column_do_not_parse():
    # One format per column: an ISO time or a garbled value among slashed ones becomes null (quarantined).
    values = pl.Series(["2/24/2015 22:55", "2/25/2015 1:00", "2015-02-26T10:00:00Z", "2/30/2015 10:00", None])
    seconds, fmt = parse_times(values, "auto")
    assert fmt == "%m/%d/%Y %H:%M"
    assert seconds.to_list()[2:] == [None, None, None]


@pytest.mark.parametrize("values, expected", [
    (["20240301", "20240302"], "yyyymmdd"),
    (["1709283600", "1709283601"], "unix_s"),
    (["2024-03-01T09:00:00Z"], "iso8601"),
])
def test_the_other_formats_are_still_detected(values, expected):
    assert detect_format(pl.Series(values)) == expected


HEADER = "user_id,signup_time,purchase_time,purchase_value,device_id,source,browser,sex,age,ip_address,class"
ROWS = [
    "22058,2/24/2015 22:55,4/18/2015 2:47,34,QVPSPJUOCKZAR,SEO,Chrome,M,39,732758368.8,0",
    "333320,6/7/2015 20:39,6/8/2015 1:38,16,EOGFQPIZPYXFZ,Ads,Chrome,F,53,350311387.9,0",
    "1359,1/1/2015 18:52,1/1/2015 18:52,15,YSSKYOSJHPPLJ,SEO,Opera,M,53,2621473820,1",
]


def _fraud_export(tmp_path, last_line: str):
    text = "\ufeff" + "\r\n".join([HEADER, *ROWS, last_line]) + "\r\n"
    path = tmp_path / "fraud_data.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


STATED = {"user_col": "user_id", "item_col": "device_id", "time_col": "purchase_time", "event_col": None,
          "default_event": "purchase", "value_col": "purchase_value"}


def test_fraud_export_cut_off_with_all_fields_is_quarantined_with_its_reason(tmp_path):
    # Upstream's last line keeps every comma but lost the values after the sign-up time.
    path = _fraud_export(tmp_path, "393385,8/11/2015 19:00,,,,,,,,,")
    ingested = ingest_files(path, stated=STATED)
    result = ingested.result
    assert result.time_format == "%m/%d/%Y %H:%M"
    assert result.counts() == {"accepted": 3, "missing_item_id": 1}
    row = result.quarantine.row(0, named=True)
    assert (row["__row__"], row["user_id"]) == (5, "393385")
    assert "empty" in row["detail"]
    assert ingested.dataset.events.frame["timestamp"].min() == _unix(2015, 1, 1, 18, 52)


def test_fraud_export_cut_off_mid_line_is_a_wrong_field_count(tmp_path):
    path = _fraud_export(tmp_path, "393385,8/11/2015 19:0")
    result = ingest_files(path, stated=STATED).result
    assert result.counts() == {"accepted": 3, "wrong_field_count": 1}
    assert "truncated" in result.quarantine["detail"][0]
