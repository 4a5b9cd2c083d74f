"""The right of access (export) and the retention window (purge on demand and at start)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import event, user_with_history

NOW = int(time.time())
DAY = 86_400


def _service(bundles, store, **options) -> Service:
    return Service.open(bundles.text, store, text_cache_dir=bundles.cache / "text", **options)


def test_export_holds_the_stored_events_and_the_history_the_model_reads(bundles, tmp_path):
    user = user_with_history(bundles.events, nth=7)
    item = bundles.events["item_id"].drop_nulls()[0]
    with TestClient(create_app(_service(bundles, tmp_path / "events.sqlite"))) as client:
        client.post("/v1/events", json={"events": [event("x-1", user, item, NOW - 5, "cart")]})
        exported = client.get(f"/v1/users/{user}/export").json()
        state = client.get(f"/v1/users/{user}/state").json()
    assert [e["event_id"] for e in exported["stored_events"]] == ["x-1"] and exported["forgotten"] is False
    assert [h["item_id"] for h in exported["model_history"]] == state["recent_items"]
    assert exported["model_history"][-1] == {"item_id": item, "event_type": "cart", "timestamp": NOW - 5}
    assert len(exported["model_history"]) > 1  # the bundle's history of a known user comes first


def test_purge_deletes_old_events_from_the_store_and_the_states(bundles, tmp_path):
    item = bundles.events["item_id"].drop_nulls()[0]
    old, new = event("old-1", "purge-user", item, NOW - 40 * DAY), event("new-1", "purge-user", item, NOW - 5)
    with TestClient(create_app(_service(bundles, tmp_path / "events.sqlite"))) as client:
        assert client.post("/v1/events", json={"events": [old, new]}).json()["stored"] == 2
        refused = client.post("/v1/admin/purge")
        assert refused.status_code == 422 and "retention" in refused.json()["detail"]
        purged = client.post("/v1/admin/purge", json={"before": NOW - 30 * DAY}).json()
        assert purged == {"deleted_events": 1, "before": NOW - 30 * DAY}
        assert [e["event_id"] for e in client.get("/v1/users/purge-user/events").json()["events"]] == ["new-1"]
        assert len(client.get("/v1/users/purge-user/state").json()["recent_items"]) == 1


def test_the_retention_window_is_applied_at_start(bundles, tmp_path):
    store = tmp_path / "events.sqlite"
    item = bundles.events["item_id"].drop_nulls()[0]
    with TestClient(create_app(_service(bundles, store))) as client:
        client.post("/v1/events", json={"events": [event("r-old", "kept-user", item, NOW - 10 * DAY),
                                                   event("r-new", "kept-user", item, NOW - 60)]})
    with TestClient(create_app(_service(bundles, store, retention_days=7))) as client:
        deadline = time.monotonic() + 10
        while len(client.get("/v1/users/kept-user/events").json()["events"]) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e["event_id"] for e in client.get("/v1/users/kept-user/events").json()["events"]] == ["r-new"]
        cutoff = client.app.state.service.retention_cutoff()
        assert abs(cutoff - (time.time() - 7 * DAY)) < 60
