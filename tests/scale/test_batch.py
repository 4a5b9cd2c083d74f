"""Batch scoring: every user's top-k streamed to Parquet, the same rows as `recommend`, any chunk size."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer
from shopformer.scale.batch import recommendations_checksum, score_users


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("batch")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=150, n_items=60, days=14, seed=6))
    prepared = prepare(ingest_files(files.events, files.catalog).dataset, PrepareConfig())
    ids_only = {"use_text": False, "use_attributes": False, "use_price": False}
    Shopformer(model=ids_only, train={"epochs": 1, "progress": False, "seed": 0}).fit(prepared).save(root / "bundle")
    return root / "bundle"


def test_batch_scores_equal_recommend_whatever_the_chunk(bundle, tmp_path):
    model = Shopformer.load(bundle)
    users = model.known_users()
    direct = model.recommend(users=users, k=5)
    small = score_users(model, tmp_path / "a.parquet", k=5, chunk=7)
    large = score_users(model, tmp_path / "b.parquet", k=5, chunk=10_000)
    written = pl.read_parquet(tmp_path / "a.parquet")
    assert written.columns == ["user_id", "item_id", "score", "rank"] and small["rows"] == written.height == direct.height
    assert small["checksum"] == large["checksum"] == recommendations_checksum(direct)
    assert written.sort("user_id", "rank").select("user_id", "item_id").equals(direct.sort("user_id", "rank").select("user_id", "item_id"))
    changed = direct.with_columns(item_id=pl.when(pl.col("rank") == 1).then(pl.lit("other")).otherwise("item_id"))
    assert recommendations_checksum(changed) != small["checksum"]


def test_score_from_the_command_line(bundle, tmp_path):
    runner = CliRunner()
    users = Shopformer.load(bundle).known_users()[:4]
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n\n")
    result = runner.invoke(app, ["score", "--bundle", str(bundle), "--users", str(tmp_path / "users.txt"), "-k", "3",
                                 "--out", str(tmp_path / "recs.parquet"), "--json", str(tmp_path / "score.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "score.json").read_text())
    assert summary["users"] == 4 and summary["rows"] == 12 and summary["rows_per_s"] > 0
    missing = runner.invoke(app, ["score", "--bundle", str(bundle), "--users", "nobody.txt", "--out", str(tmp_path / "x.parquet")])
    assert missing.exit_code != 0 and "give `all` or a file of user ids" in missing.output
    csv = runner.invoke(app, ["score", "--bundle", str(bundle), "--out", str(tmp_path / "x.csv")])
    assert csv.exit_code != 0 and "written as Parquet" in csv.output and "Traceback" not in missing.output + csv.output
