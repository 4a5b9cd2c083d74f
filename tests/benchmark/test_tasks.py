"""The task benchmark harness: one document with every model, the ground truth, and the targets."""

from __future__ import annotations

import json

import polars as pl
import pytest

from shopformer.benchmark.tasks import run_task_benchmark, target_summary
from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, days=30, seed=17))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    return dataset, pl.read_csv(files.sessions)


def test_document_has_every_model_split_and_the_ground_truth(shop, tmp_path):
    dataset, truth = shop
    seen = []
    document = run_task_benchmark(dataset, tasks=("intent", "next-event-type"), models=("lightgbm", "logistic"),
                                  session_truth=truth, plot_dir=tmp_path, resamples=50, on_result=seen.append)
    json.dumps(document)  # serialisable as it is
    assert document["machine"]["cores_available"] >= 1 and document["dataset"]["time_resolution"] == "second"
    assert document["wall_seconds"] > 0
    rows = {(r["task"], r["model"], r["split"]): r for r in document["results"]}
    assert len(seen) == len(rows) == 2 * 2 * 2 + 1
    truth_row = rows[("intent", "ground-truth", "test")]
    model_row = rows[("intent", "lightgbm", "test")]
    assert truth_row["n_examples"] == model_row["n_examples"] and truth_row["base_rate"] == model_row["base_rate"]
    assert truth_row["metrics"]["auc"] > 0.7 and set(model_row["auc_by_prefix"]) == {"1", "2", "3", "5", "all"}
    assert model_row["metrics"]["auc_ci"][0] <= model_row["metrics"]["auc"] <= model_row["metrics"]["auc_ci"][1]
    assert len(rows[("next-event-type", "logistic", "test")]["base_rate"]) >= 4
    assert (tmp_path / "reliability_intent.png").is_file()
    assert [t["task"] for t in document["targets"]] == ["intent", "next-event-type"]


def test_targets_choose_shopformer_on_validation_only():
    def row(model, split, auc, ece=0.01):
        return {"task": "churn", "model": model, "split": split, "metrics": {"auc": auc, "ece": ece}}

    results = [row("lightgbm", "valid", 0.70), row("lightgbm", "test", 0.70),
               row("shopformer-frozen", "valid", 0.75), row("shopformer-frozen", "test", 0.71),
               row("shopformer-hybrid", "valid", 0.74), row("shopformer-hybrid", "test", 0.80)]
    [target] = target_summary(results)
    assert target["shopformer_model"] == "shopformer-frozen"  # best on valid, though not on test
    assert target["auc_delta"] == pytest.approx(0.01) and not target["auc_target_met"] and target["ece_target_met"]


def test_unknown_names_are_config_errors(shop):
    dataset, _ = shop
    with pytest.raises(ConfigError, match="unknown task"):
        run_task_benchmark(dataset, tasks=("loyalty",))
    with pytest.raises(ConfigError, match="unknown task model"):
        run_task_benchmark(dataset, models=("xgboost",))
