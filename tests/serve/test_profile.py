"""GET /v1/users/{user}/profile and /explanations: the bundle's log plus the stored events."""

from __future__ import annotations

import polars as pl
from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import TASKS, event


def test_profile_of_a_known_user_a_new_user_and_an_unknown_one(bundles, task_bundle, tmp_path):
    frame = bundles.dataset.events.frame
    known = frame.group_by("user_id").len().sort("len", "user_id", descending=[True, False])["user_id"][0]
    last = int(frame["timestamp"].max())
    item = frame.filter(pl.col("item_id") != "")["item_id"][0]
    service = Service.open(task_bundle, tmp_path / "events.sqlite", text_cache_dir=bundles.cache / "text")
    with TestClient(create_app(service)) as client:
        answer = client.get(f"/v1/users/{known}/profile")
        posted = client.post("/v1/events", json={"events": [event("one-1", "single", item, last, "view")]})
        assert posted.json()["stored"] == 1, posted.text
        single = client.get("/v1/users/single/profile")
        unknown = client.get("/v1/users/never-seen/profile")
        why = client.get(f"/v1/users/{known}/explanations", params={"k": 3})
        why_item = client.get(f"/v1/users/{known}/explanations", params={"item": item, "method": "occlusion"})
        why_churn = client.get(f"/v1/users/{known}/explanations", params={"task": "churn"})
        why_single = client.get("/v1/users/single/explanations")
        why_unknown = client.get("/v1/users/never-seen/explanations")
        bad_method = client.get(f"/v1/users/{known}/explanations", params={"method": "guess"})
    assert answer.status_code == 200, answer.text
    profile = answer.json()["profile"]
    logged = frame.filter(pl.col("user_id") == known)
    assert profile["user_id"] == known and profile["events"] == logged.height
    assert profile["purchases"] == logged.filter(pl.col("event_type") == "purchase").height
    assert profile["lifecycle"] in {"new", "active", "at risk", "churned", "reactivated"}
    assert len(profile["user_vector"]) > 0 and profile["rfm"][0] == "R"
    assert set(profile["predictions"]) == set(TASKS) and 0 <= profile["anomaly_score"] <= 1
    assert single.status_code == 200, single.text
    lone = single.json()["profile"]
    assert lone["events"] == 1 and lone["lifecycle"] == "new" and lone["recency_days"] == 0
    assert unknown.status_code == 404 and "no events" in unknown.json()["detail"]
    for response in (why, why_item, why_churn, why_single):
        assert response.status_code == 200, response.text
    top = why.json()["explanation"]
    assert len(top["events"]) == 3 and top["sentence"].startswith("Recommended")
    assert all(isinstance(e["weight"], float) for e in top["events"])
    assert why_item.json()["explanation"]["target"]["item_id"] == item
    assert why_churn.json()["explanation"]["target"]["task"] == "churn" and 0 <= why_churn.json()["explanation"]["score"] <= 1
    assert why_unknown.status_code == 404 and bad_method.status_code == 422 and "guess" in bad_method.text
