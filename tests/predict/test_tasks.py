"""TaskPredictor: fitted task models saved in a bundle's tasks/ folder, reloaded without pickle, scoring users and sessions."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError, DataError
from shopformer.predict.tasks import TaskPredictor

TASKS = ("intent", "item-propensity", "churn", "next-event-type")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, days=30, seed=11))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    predictor = TaskPredictor.fit(dataset, TASKS, model="lightgbm")
    bundle = tmp_path_factory.mktemp("bundle")
    predictor.save(bundle)
    return dataset, predictor, bundle


def test_saved_models_reload_and_predict_the_same(fitted):
    dataset, predictor, bundle = fitted
    files = {p.suffix for p in (bundle / "tasks").rglob("*") if p.is_file()}
    assert files <= {".json", ".txt", ".parquet"}
    meta = json.loads((bundle / "tasks" / "tasks.json").read_text())
    assert set(meta["tasks"]) == set(TASKS) and meta["tasks"]["churn"]["test_metrics"]["auc"] > 0.6
    loaded = TaskPredictor.load(bundle)
    for task in TASKS:
        before, after = predictor.predict_proba(task), loaded.predict_proba(task)
        assert before.columns == after.columns and before.height == after.height > 0
        score = [c for c in before.columns if c == "probability" or c.startswith("p_")]
        assert np.allclose(before.select(score).to_numpy(), after.select(score).to_numpy(), atol=1e-6)


def test_tables_per_task(fitted):
    dataset, predictor, _ = fitted
    users = dataset.events.frame["user_id"].unique().sort().head(5).to_list()
    churn = predictor.predict_proba("churn", users=users)
    assert sorted(churn["user_id"].to_list()) == users and churn["probability"].is_between(0, 1).all()
    intent = predictor.predict_proba("intent", users=users)
    assert intent.columns == ["user_id", "session_id", "cutoff", "probability"] and intent["user_id"].n_unique() == intent.height
    session = intent["session_id"][0]
    assert predictor.predict_proba("intent", sessions=[session])["session_id"].to_list() == [session]
    nxt = predictor.predict_proba("next-event-type", users=users)
    assert np.allclose(nxt.select(pl.selectors.starts_with("p_")).sum_horizontal().to_numpy(), 1, atol=1e-4)
    assert set(predictor.predict_proba("item-propensity", users=users).columns) >= {"user_id", "item_id", "probability"}


def test_predict_users_scores_live_events(fitted):
    dataset, predictor, _ = fitted
    events = dataset.events.frame.filter(pl.col("user_id").is_in(["u00001", "u00002"])).drop("session_id")
    now = int(events["timestamp"].max()) + 60
    scores = predictor.predict_users(events, now)
    assert set(scores) <= {"u00001", "u00002"} and scores
    for per_task in scores.values():
        assert 0 <= per_task["churn"] <= 1 and 0 <= per_task["intent"] <= 1
        assert abs(sum(per_task["next-event-type"].values()) - 1) < 1e-4
    earlier = predictor.predict_users(events, now - 30 * 86_400)
    assert earlier != scores  # only events up to `now` count


def test_bad_requests_are_clear_errors(fitted, tmp_path):
    _, predictor, _ = fitted
    with pytest.raises(DataError, match="no events"):
        predictor.predict_proba("churn", users=["nobody"])
    with pytest.raises(ConfigError, match="no 'propensity' model"):
        predictor.predict_proba("propensity")
    with pytest.raises(ConfigError, match="unknown task"):
        predictor.predict_proba("loyalty")
    with pytest.raises(ConfigError, match="sessions= applies"):
        predictor.predict_proba("churn", sessions=["s1"])
    with pytest.raises(DataError, match="no session"):
        predictor.predict_proba("intent", sessions=["s-unknown"])
    with pytest.raises(DataError, match="events to score"):
        predictor.predict_users(pl.DataFrame({"user_id": ["u"]}), 0)
    with pytest.raises(DataError, match="train-tasks"):
        TaskPredictor.load(tmp_path)


def test_saving_again_replaces_the_task_models(fitted, tmp_path):
    dataset, predictor, _ = fitted
    predictor.save(tmp_path)
    only_churn = TaskPredictor({"churn": predictor.models["churn"]}, predictor.classes, predictor.config,
                               predictor.context, predictor.info)
    only_churn.save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "tasks").iterdir() if p.is_dir()) == ["churn"]
    assert set(TaskPredictor.load(tmp_path).models) == {"churn"}
