"""Profiles and segments of a bundle: `BundleInsight`, `Shopformer.profile` and the `profile` / `segments` commands."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import UnknownUserError
from shopformer.predict.estimator import Shopformer
from shopformer.predict.insight import BundleInsight
from shopformer.predict.tasks import TaskPredictor


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, n_items=200, days=30, seed=7))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    folder = tmp_path_factory.mktemp("bundle")
    model = {"use_text": False}
    Shopformer(model=model, train={"epochs": 1, "progress": False, "num_threads": 1}).fit(prepare(dataset)).save(folder)
    TaskPredictor.fit(dataset, ("propensity", "churn"), model="logistic").save(folder)
    return folder, dataset


def test_segments_then_profiles_carry_predictions_segment_and_vector(bundle):
    folder, dataset = bundle
    insight = BundleInsight.open(folder)
    segments = insight.fit_segments(k=3)
    assert segments.prediction_columns == ["propensity_probability", "churn_probability"] and len(segments.names) == 3
    reopened = BundleInsight.open(folder)
    users = dataset.events.frame["user_id"].unique().sort().head(3).to_list()
    table = reopened.profiles(users)
    assert table["user_id"].to_list() == users and table["segment"].is_between(0, 2).all()
    assert table["churn_probability"].is_between(0, 1).all() and table["next_items"].list.len().min() == 5
    assert table["user_vector"].list.len().min() == insight.model.config.dim
    assert table["anomaly_score"].is_between(0, 1).all() and table["anomaly_flagged"].dtype == pl.Boolean
    with pytest.raises(UnknownUserError):
        reopened.profiles(["nobody"])


def test_estimator_profile_from_its_own_histories(bundle):
    folder, dataset = bundle
    model = Shopformer.load(folder)
    user = dataset.events.frame["user_id"][0]
    row = model.profile([user]).row(0, named=True)
    assert row["user_id"] == user and row["events"] <= model.max_len and row["lifecycle"]
    everyone = model.profile(events=dataset.events.frame, catalog=dataset.catalog)
    assert everyone.height == dataset.events.n_users and everyone["price_level"].is_not_null().any()


def test_profile_and_segments_commands(bundle, tmp_path):
    folder, dataset = bundle
    runner = CliRunner()
    user = dataset.events.frame["user_id"][0]
    card = runner.invoke(app, ["profile", "--bundle", str(folder), "--user", user])
    assert card.exit_code == 0 and f"user {user}" in card.output and "RFM" in card.output
    out = tmp_path / "profiles.parquet"
    every = runner.invoke(app, ["profile", "--bundle", str(folder), "--all", "--out", str(out)])
    assert every.exit_code == 0 and pl.read_parquet(out).height == dataset.events.n_users
    missing = runner.invoke(app, ["profile", "--bundle", str(folder), "--user", "nobody"])
    assert missing.exit_code != 0 and "nobody" in missing.output
    fitted = runner.invoke(app, ["segments", "--bundle", str(folder), "--k", "3"])
    assert fitted.exit_code == 0 and "3 segments" in fitted.output
