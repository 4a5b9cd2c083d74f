"""`shopformer train | recommend | evaluate | benchmark` from the command line: outputs and errors."""

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
    return generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, seed=3))


@pytest.fixture(scope="module")
def bundle(shop, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "b"
    result = runner.invoke(app, ["train", str(shop.events), "--catalog", str(shop.catalog), "--out", str(out),
                                 "--set", "train.epochs=2", "--set", "model.dim=32", "--set", "train.progress=false"])
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_bundle_with_the_resolved_config(bundle):
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["model"]["dim"] == 32 and meta["train"]["epochs"] == 2
    assert meta["model"]["use_text"] and meta["model"]["use_price"]  # the demo catalog has both
    assert len((bundle / "metrics.jsonl").read_text().splitlines()) == 2


def test_recommend_for_users_and_sessions(bundle, tmp_path):
    out = tmp_path / "recs.csv"
    result = runner.invoke(
        app, ["recommend", "--bundle", str(bundle), "--user", "u00001", "--user", "nobody", "-k", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "user_id,item_id,score,rank,source" and len(lines) == 9
    assert sum(line.endswith(",popular") for line in lines) == 4  # the unknown user
    session = runner.invoke(app, ["recommend", "--bundle", str(bundle), "--session", "p00001,p00002", "-k", "3"])
    assert session.exit_code == 0 and "p000" in session.output


def test_evaluate_prints_both_candidate_sets(bundle, shop, tmp_path):
    out = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", str(shop.events), "--bundle", str(bundle), "--json", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["filter_seen=True"]["hr@10"] >= metrics["filter_seen=False"]["hr@10"] > 0.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--demo", "--set", "model.layerz=3"], "layerz"),
        (["train", "--demo", "--set", "dim=3"], "model."),
        (["train"], "either an event file or --demo"),
        (["train", "--demo", "--model-config", "/nonexistent.yaml"], "no such file"),
        (["train", "--demo", "--set", "model.dim=[1"], "not valid YAML"),
        (["recommend", "--bundle", "/nonexistent", "--user", "u1"], "not a Shopformer bundle"),
        (["recommend", "--user", "u1", "--session", "a"], "not both"),
        (["benchmark", "next-item", "--events", "x.txt", "--json", "o.json", "--format", "csv"], "s3rec or recbole"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_line(arguments, message):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_model_config_file_must_hold_model_and_train_sections(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("model:\n  dim: 16\nmodle:\n  layers: 1\n")
    result = runner.invoke(app, ["train", "--demo", "--model-config", str(config)])
    assert result.exit_code == 2 and "only `model:` and `train:`" in result.output


def test_benchmark_next_item_writes_the_stable_json_layout(tmp_path):
    out = tmp_path / "scientific.json"
    result = runner.invoke(app, ["benchmark", "next-item", "--format", "recbole", "--events", str(dataset_path("amazon-scientific")),
                                 "--models", "popular,markov,shopformer-ids-only", "--set", "train.epochs=1",
                                 "--set", "train.progress=false", "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert {"dataset", "protocol", "machine", "versions", "results"} <= set(document)
    assert document["dataset"]["users"] == 8442 and document["dataset"]["items"] == 4385
    rows = {(r["model"], r["split"]): r for r in document["results"]}
    assert set(rows) == {(m, s) for m in ("popular", "markov", "shopformer-ids-only") for s in ("valid", "test")}
    for row in rows.values():
        assert {"hr@10", "ndcg@10", "mrr@10"} <= set(row["metrics"])
        assert row["metrics_seen_filtered"]["hr@10"] >= row["metrics"]["hr@10"]
    assert rows[("markov", "test")]["metrics"]["ndcg@10"] > rows[("popular", "test")]["metrics"]["ndcg@10"]
    assert rows[("shopformer-ids-only", "test")]["epochs"] == 1
    assert rows[("shopformer-ids-only", "test")]["achieved_gflops"] > 0
