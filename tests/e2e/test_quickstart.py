"""`shopformer quickstart` end to end on the demo shop: every row accounted for, outputs written."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from shopformer.cli import app


def test_quickstart_runs_the_whole_data_flow(tmp_path):
    out = tmp_path / "qs"
    result = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--train-minutes", "0.1"])
    assert result.exit_code == 0, result.output

    meta = json.loads((out / "demo-shop" / "ground_truth" / "meta.json").read_text())
    report = json.loads((out / "ingest" / "ingest_report.json").read_text())
    raw_rows = pl.read_csv(out / "demo-shop" / "events.csv", infer_schema=False).height
    assert report["rows_read"] == raw_rows
    quarantined = report["rows_read"] - report["accepted"]
    assert quarantined == sum(meta["malformed_rows"].values())

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_users"] > 100 and summary["n_items"] > 100
    assert (out / "summary.png").stat().st_size > 10_000
    assert (out / "prepared" / "events.parquet").exists()
    assert "purchase" in result.output

    bundle = json.loads((out / "bundle" / "bundle.json").read_text())
    assert bundle["model"]["use_text"] and bundle["model"]["use_attributes"]
    assert "shopformer recommend --bundle" in result.output
    assert result.output.count("model") >= 15  # 3 users x 5 recommendations, each flagged as from the model

    # Prediction tasks fitted into the bundle, their top cases shown, and the service command printed.
    assert (out / "bundle" / "tasks").is_dir()
    assert "Sessions of the last day most likely" in result.output
    assert "Users most likely to churn" in result.output
    assert "shopformer serve --bundle" in result.output and "curl " in result.output

    # Segments saved into the bundle, and the offline report written beside it.
    assert (out / "bundle" / "insight" / "segments.json").is_file() and "segments:" in result.output
    assert (out / "report.html").stat().st_size > 100_000
