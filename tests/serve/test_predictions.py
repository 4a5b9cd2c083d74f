"""GET /v1/users/{user}/predictions with the bundle's prediction heads (`tasks/`), on the demo shop."""

from __future__ import annotations

import shutil
import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.service import Service

TASKS = ("intent", "propensity", "churn")


@pytest.fixture(scope="module")
def task_bundle(bundles, tmp_path_factory):
    predictor_module = pytest.importorskip("shopformer.tasks.predictor", reason="the prediction heads are not built in")
    bundle = tmp_path_factory.mktemp("tasks") / "bundle"
    shutil.copytree(bundles.text, bundle)
    predictor_module.TaskPredictor.fit(bundles.dataset, tasks=TASKS, model="logistic").save(bundle)
    return bundle


def test_predictions_are_the_heads_answer_for_the_users_stored_events(bundles, task_bundle, tmp_path):
    from shopformer.tasks.predictor import TaskPredictor

    frame = bundles.dataset.events.frame
    user = frame.group_by("user_id").len().sort("len", "user_id", descending=[True, False])["user_id"][0]
    mine = frame.filter(pl.col("user_id") == user).sort("timestamp")
    events = [{"event_id": f"p-{i}", "user_id": user, "item_id": item, "event_type": kind, "timestamp": ts}
              for i, (item, kind, ts) in enumerate(mine.select("item_id", "event_type", "timestamp").iter_rows())]
    service = Service.open(task_bundle, tmp_path / "events.sqlite", text_cache_dir=bundles.cache / "text")
    with TestClient(create_app(service)) as client:
        assert client.post("/v1/events", json={"events": events}).json()["stored"] == len(events)
        response = client.get(f"/v1/users/{user}/predictions")
        assert response.status_code == 200, response.text
        answer = response.json()["predictions"]
        unknown = client.get("/v1/users/never-seen/predictions")
    stored = mine.select("user_id", "item_id", "timestamp", "event_type")
    expected = TaskPredictor.load(task_bundle).predict_users(stored, now=int(time.time()))[user]
    assert set(answer) == set(TASKS)
    for task in TASKS:
        assert 0.0 <= answer[task] <= 1.0
        assert answer[task] == pytest.approx(expected[task], abs=0.01)
    assert unknown.status_code == 404 and "no stored events" in unknown.json()["detail"]
