"""GET /v1/users/{user}/predictions with the bundle's prediction heads (`tasks/`), on the demo shop."""

from __future__ import annotations

import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import TASKS

COLUMNS = ["user_id", "item_id", "timestamp", "event_type"]


def _assert_answer(answer: dict, expected: dict) -> None:
    assert set(answer) == set(TASKS)
    for task in TASKS:
        assert 0.0 <= answer[task] <= 1.0 and answer[task] == pytest.approx(expected[task], abs=0.01)


def test_predictions_read_the_bundles_log_and_the_stored_events(bundles, task_bundle, tmp_path):
    from shopformer.predict.tasks import TaskPredictor

    predictor = TaskPredictor.load(task_bundle)
    frame = bundles.dataset.events.frame
    known = frame.group_by("user_id").len().sort("len", "user_id", descending=[True, False])["user_id"][0]
    copied = frame.filter(pl.col("user_id") == known).sort("timestamp").with_columns(pl.lit("newcomer").alias("user_id"))
    events = [{"event_id": f"p-{i}", "user_id": "newcomer", "item_id": item, "event_type": kind, "timestamp": ts}
              for i, (item, kind, ts) in enumerate(copied.select("item_id", "event_type", "timestamp").iter_rows())]
    service = Service.open(task_bundle, tmp_path / "events.sqlite", text_cache_dir=bundles.cache / "text")
    with TestClient(create_app(service)) as client:
        from_log = client.get(f"/v1/users/{known}/predictions")
        assert client.post("/v1/events", json={"events": events}).json()["stored"] == len(events)
        from_store = client.get("/v1/users/newcomer/predictions")
        unknown = client.get("/v1/users/never-seen/predictions")
        client.delete(f"/v1/users/{known}")
        forgotten = client.get(f"/v1/users/{known}/predictions")
    now = int(time.time())
    logged = predictor.context.events.filter(pl.col("user_id") == known).select(COLUMNS)
    _assert_answer(from_log.json()["predictions"], predictor.predict_users(logged, now=now)[known])
    _assert_answer(from_store.json()["predictions"], predictor.predict_users(copied.select(COLUMNS), now=now)["newcomer"])
    for response in (unknown, forgotten):
        assert response.status_code == 404 and "no events to predict from" in response.json()["detail"]
