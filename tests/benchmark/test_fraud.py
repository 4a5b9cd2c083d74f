"""The fraud benchmark: a tiny file of the public fraud data's layout always, a slice of the real file when
it is on this machine; the JSON's keys, the time-ordered split, skipped columns and refused files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from shopformer.benchmark.fraud import precision_at, run_fraud, split_by_time
from shopformer.cli.fraud_benchmark import fraud_benchmark
from tests.conftest import dataset_path

HEADER = ["user_id", "signup_time", "purchase_time", "purchase_value", "device_id", "source", "browser", "sex", "age",
          "ip_address", "class"]
METHODS = {"insight_default", "insight_tail", "iforest", "ecod", "copod", "lightgbm_classic", "insight_supervised"}


def _when(seconds: float) -> str:
    t = datetime.fromtimestamp(int(seconds), UTC)
    return f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"


def write_fraud_file(path, n: int = 200, columns: list[str] = HEADER, seed: int = 0):
    """`n` accounts through 2015 in the fraud data's layout (BOM, CRLF, M/D/YYYY H:MM, a cut-off last line):
    every 10th is a fraud, half of them buying in the sign-up minute on a device shared by three."""
    rng = np.random.default_rng(seed)
    start = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
    purchase = np.sort(start + rng.uniform(0, 340 * 86_400, n))
    lines = [",".join(columns)]
    for i, bought in enumerate(purchase):
        fraud, burst = i % 10 == 5, i % 20 == 5
        signup = bought - (0 if burst else rng.uniform(86_400, 60 * 86_400))
        device = f"DEV{i // 60}" if burst else f"D{i:05d}"
        values = {"user_id": str(1000 + i), "signup_time": _when(signup), "purchase_time": _when(bought),
                  "purchase_value": str(rng.integers(9, 120)), "device_id": device, "source": rng.choice(["SEO", "Ads", "Direct"]),
                  "browser": rng.choice(["Chrome", "Safari", "IE"]), "sex": rng.choice(["M", "F"]), "age": str(rng.integers(18, 70)),
                  "ip_address": f"{rng.uniform(1e8, 4e9):.1f}", "class": str(int(fraud))}
        lines.append(",".join(values[c] for c in columns))
    lines.append("99999," + _when(start) + "," * (len(columns) - 2))
    path.write_bytes(("\ufeff" + "\r\n".join(lines)).encode("utf-8"))
    return path


def _cli():
    app = typer.Typer()
    app.command()(fraud_benchmark)
    return app


def test_tiny_file_without_ip_column_through_the_command(tmp_path):
    events = write_fraud_file(tmp_path / "fraud.csv", columns=[c for c in HEADER if c != "ip_address"])
    out = tmp_path / "out" / "fraud.json"
    result = CliRunner().invoke(_cli(), ["--events", str(events), "--json", str(out), "--resamples", "10"])
    assert result.exit_code == 0, result.output
    assert "no ip_address column" in result.output
    document = json.loads(out.read_text())
    assert {"dataset", "accounts", "quarantine", "notes", "split", "methods", "margins", "all_rows_unsupervised",
            "chosen", "signal_bound_auc", "protocol", "machine", "versions"} <= set(document)
    assert document["quarantine"] == {"missing_timestamp": 1}
    assert document["notes"] == ["no ip_address column: users per IP, IP history and country skipped"]
    assert [document["split"][p]["rows"] for p in ("train", "validation", "test")] == [140, 20, 40]
    assert document["split"]["train"]["purchases_to"] <= document["split"]["test"]["purchases_from"]
    assert set(document["methods"]) == METHODS
    assert "users_per_ip" not in document["classic_features"] and "users_per_device" in document["classic_features"]
    test = document["methods"]["insight_default"]["test"]
    assert {"roc_auc", "precision_at_1%", "roc_auc_ci95"} <= set(test)
    # The sign-up-minute purchases on shared devices are what every method must find.
    assert document["all_rows_unsupervised"]["insight_default"]["roc_auc"] > 0.7


def test_a_file_without_the_label_is_refused_with_a_clear_message(tmp_path):
    events = write_fraud_file(tmp_path / "fraud.csv", n=30, columns=[c for c in HEADER if c != "class"])
    result = CliRunner().invoke(_cli(), ["--events", str(events), "--json", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    assert "lacks the column(s) class" in result.output
    assert not (tmp_path / "f.json").exists()


def test_slice_of_the_real_file(tmp_path):
    folder = dataset_path("fraud-ecommerce")
    lines = (folder / "fraud_data.csv").read_bytes().split(b"\n")
    sliced = tmp_path / "fraud_slice.csv"
    sliced.write_bytes(b"\n".join(lines[:1001]))
    document = run_fraud(sliced, ip_countries=folder / "IpAddress_to_Country.csv", resamples=10)
    assert document["accounts"] == 1000 and document["notes"] == []
    assert sum(document["split"][p]["rows"] for p in ("train", "validation", "test")) == 1000
    assert document["time_format"] == "%m/%d/%Y %H:%M"
    assert "country" in document["classic_features"]
    assert set(document["methods"]) == METHODS


def test_split_and_precision_definitions():
    assert np.bincount(split_by_time(10)).tolist() == [7, 1, 2]
    labels, scores = np.array([1, 0, 0, 1]), np.array([0.9, 0.9, 0.1, 0.2])
    # Ties put the negative first: the top 25% (one row) is the tied negative.
    assert precision_at(labels, scores, 0.25) == 0.0
    assert precision_at(labels, scores, 0.5) == 0.5


def test_too_few_rows_are_refused(tmp_path):
    events = write_fraud_file(tmp_path / "fraud.csv", n=10)
    with pytest.raises(Exception, match="at least 20"):
        run_fraud(events)
