"""The `shopformer` command line on real files: exit codes, messages and written outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from shopformer.cli import app
from tests.conftest import dataset_path

runner = CliRunner()

EVENTS_CSV = """event_id,CustomerID,StockCode,InvoiceDate,action,qty
e1,u1,i1,2024-03-01T09:00:00Z,pv,1
e2,u1,i2,2024-03-01T09:01:00Z,add_to_cart,1
e3,u1,i2,2024-03-01T09:02:00Z,buy,1
e4,u2,i1,2024-03-01T10:00:00Z,pv,1
e5,,i1,2024-03-01T10:05:00Z,pv,1
e6,u2,i3,not-a-date,pv,1
e7,u2,i3,2024-03-01T10:07:00Z,teleport,1
e8,u2,i3,2024-03-01T10:08:00Z,pv,-2
"""


def _write(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_prepare_guesses_columns_and_accounts_for_every_row(tmp_path):
    events = _write(tmp_path, EVENTS_CSV)
    out = tmp_path / "prepared"
    result = runner.invoke(app, ["data", "prepare", str(events), "--out", str(out), "--event-col", "action"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ingest" / "ingest_report.json").read_text())
    assert report["rows_read"] == 8
    assert report["accepted"] == 4
    prepared = pl.read_parquet(out / "events.parquet")
    assert prepared.height == 4
    assert set(prepared["event_type"]) == {"view", "cart", "purchase"}
    mapping = (out / "ingest_config.yaml").read_text()
    assert "user_col: CustomerID" in mapping and "item_col: StockCode" in mapping


def test_inspect_shows_problems_by_reason(tmp_path):
    events = _write(tmp_path, EVENTS_CSV)
    result = runner.invoke(app, ["data", "inspect", str(events), "--event-col", "action"])
    assert result.exit_code == 0, result.output
    for reason in ("missing_user_id", "unparsable_timestamp", "unknown_event_type", "negative_quantity"):
        assert reason in result.output


def test_missing_file_is_one_clear_error_and_exit_2(tmp_path):
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output
    assert "Traceback" not in result.output


def test_unknown_config_key_is_an_error(tmp_path):
    events = _write(tmp_path, EVENTS_CSV)
    config = _write(tmp_path, "events:\n  user_column: CustomerID\n", "mapping.yaml")
    result = runner.invoke(app, ["data", "prepare", str(events), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 2
    assert "user_column" in result.output


def test_bad_event_map_flag_is_an_error(tmp_path):
    events = _write(tmp_path, EVENTS_CSV)
    result = runner.invoke(app, ["data", "inspect", str(events), "--event-map", "pv"])
    assert result.exit_code == 2
    assert "raw=canonical" in result.output


def test_prepare_public_format_with_k_core(tmp_path):
    beauty = dataset_path("amazon-beauty")
    out = tmp_path / "beauty"
    result = runner.invoke(app, [
        "data", "prepare", str(beauty / "Beauty.txt"), "--format", "s3rec",
        "--with", f"item_attributes_path={beauty / 'Beauty_item2attributes.json'}",
        "--min-user-events", "5", "--min-item-events", "5", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    prepared = pl.read_parquet(out / "events.parquet")
    # Beauty is already a 5-core: the filter must keep every one of the published interactions.
    assert prepared.height == 198_502
    assert prepared["user_id"].n_unique() == 22_363


def test_prepare_otto_writes_its_quarantined_lines(tmp_path):
    lines = (dataset_path("otto-sample") / "train.jsonl").read_text().splitlines()[:3] + ['{"session": 7, "events": []}']
    events = _write(tmp_path, "\n".join(lines) + "\n", "sessions.jsonl")
    result = runner.invoke(app, ["data", "prepare", str(events), "--format", "otto", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    quarantine = pl.read_csv(tmp_path / "out" / "ingest" / "quarantine.csv")
    assert quarantine.select("line", "reason").rows() == [(4, "no_events")]


def test_unknown_format_lists_known_ones(tmp_path):
    result = runner.invoke(app, ["data", "inspect", str(tmp_path), "--format", "nosuch"])
    assert result.exit_code == 2
    assert "s3rec" in result.output


def test_console_script_exit_code_on_bad_input(tmp_path):
    empty = _write(tmp_path, "", "empty.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "shopformer", "data", "inspect", str(empty)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "empty.csv" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_raw_diginetica_sample_semicolons_and_na_user_ids(tmp_path):
    views = dataset_path("diginetica") / "sample_train-item-views.csv"
    raw = pl.read_csv(views, separator=";", infer_schema=False)
    anonymous = raw.filter(pl.col("user_id") == "NA").height
    out = tmp_path / "digi"
    result = runner.invoke(app, ["data", "prepare", str(views), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ingest" / "ingest_report.json").read_text())
    assert report["rows_read"] == raw.height == 12_391
    assert report["quarantined"] == {"missing_user_id": anonymous}
    assert report["accepted"] == raw.height - anonymous
    # Sessions as users: every row is kept.
    out2 = tmp_path / "digi-sessions"
    result = runner.invoke(app, ["data", "prepare", str(views), "--user-col", "session_id", "--out", str(out2)])
    assert result.exit_code == 0, result.output
    assert json.loads((out2 / "ingest" / "ingest_report.json").read_text())["accepted"] == 12_391
