"""`shopformer benchmark tasks`, `train-tasks` and `predict` end to end, and their one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from tests.conftest import dataset_path

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, days=30, seed=13))


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def _one_line_error(args, text):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert text in result.output
    return result


def test_train_tasks_then_predict(shop, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")  # the task models only need the folder to be a bundle's
    _ok(["train-tasks", str(shop.events), "--catalog", str(shop.catalog), "--bundle", str(bundle),
         "--tasks", "intent,churn", "--model", "lightgbm"])
    assert (bundle / "tasks" / "tasks.json").is_file()
    out = tmp_path / "intent.csv"
    _ok(["predict", "intent", "--bundle", str(bundle), "--top", "5", "--out", str(out)])
    lines = out.read_text().splitlines()
    assert lines[0] == "user_id,session_id,cutoff,probability" and len(lines) == 6
    shown = _ok(["predict", "churn", "--bundle", str(bundle), "--user", "u00001"])
    assert "u00001" in shown.output
    _one_line_error(["predict", "propensity", "--bundle", str(bundle)], "no 'propensity' model")
    _one_line_error(["predict", "churn", "--bundle", str(bundle), "--user", "ghost"], "no events")


def test_benchmark_tasks_on_taobao(tmp_path):
    root = dataset_path("taobao-multibehavior")
    out = tmp_path / "tasks.json"
    _ok(["benchmark", "tasks", "--format", "taobao", "--events", str(root / "ecomm_edge_train.txt"),
         "--item-features", str(root / "ecomm_item_feature.txt"), "--tasks", "churn", "--models", "lightgbm",
         "--json", str(out)])
    document = json.loads(out.read_text())
    assert {"dataset", "machine", "results", "targets"} <= set(document)
    test = [r for r in document["results"] if r["split"] == "test"]
    assert [(r["task"], r["model"]) for r in test] == [("churn", "lightgbm")]
    assert set(test[0]["metrics"]) == {"auc", "pr_auc", "logloss", "brier", "ece", "auc_ci"}
    assert test[0]["metrics"]["auc"] > 0.65 and 0 < test[0]["base_rate"] < 1


def test_bad_options_are_one_line_errors(shop, tmp_path):
    _one_line_error(["benchmark", "tasks", "--json", str(tmp_path / "x.json")], "--events")
    _one_line_error(["benchmark", "tasks", "--demo", "--tasks", "loyalty", "--json", str(tmp_path / "x.json")], "unknown task")
    _one_line_error(["benchmark", "tasks", "--format", "csv", "--events", str(shop.events), "--models", "xgb",
                     "--json", str(tmp_path / "x.json")], "unknown task model")
    _one_line_error(["train-tasks", str(shop.events), "--bundle", str(tmp_path)], "not a Shopformer bundle")
    _one_line_error(["predict", "churn", "--bundle", str(tmp_path)], "train-tasks")


def test_benchmark_tasks_on_a_log_of_hours(tmp_path):
    # REES46's sample spans 2 h 50 min: the splits fall back to a horizon of minutes.
    out = tmp_path / "rees46.json"
    _ok(["benchmark", "tasks", "--events", str(dataset_path("rees46-sample") / "2019-Oct.csv"), "--tasks", "intent",
         "--models", "lightgbm", "--json", str(out)])
    document = json.loads(out.read_text())
    assert document["dataset"]["horizon_minutes"] == 6 and "horizon_days" not in document["dataset"]
    test = [r for r in document["results"] if r["split"] == "test"]
    assert test[0]["n_examples"] > 2000 and test[0]["metrics"]["auc"] > 0.6


def test_benchmark_tasks_reads_the_other_public_formats(tmp_path):
    # The 20 sessions of the OTTO sample span four weeks but are too few to train on: the reader is the point.
    events = str(dataset_path("otto-sample") / "train.jsonl")
    for fmt in ("otto", "auto"):
        _one_line_error(["benchmark", "tasks", "--format", fmt, "--events", events, "--tasks", "intent",
                         "--models", "lightgbm", "--json", str(tmp_path / "x.json")], "need both classes")
    _one_line_error(["benchmark", "tasks", "--format", "otto", "--events", events, "--catalog", events,
                     "--json", str(tmp_path / "x.json")], "--catalog belongs to --format csv")
    _one_line_error(["benchmark", "tasks", "--format", "parquet", "--events", events,
                     "--json", str(tmp_path / "x.json")], "one of s3rec")
