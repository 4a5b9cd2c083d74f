"""The HTTP API in process (FastAPI's TestClient) on a bundle trained on the demo shop."""

from __future__ import annotations

import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.engine import RecommendationQuery
from shopformer.serve.service import Service
from tests.serve.conftest import event, user_with_history

NOW = int(time.time())


def _service(bundles, store, bundle=None) -> Service:
    return Service.open(bundle or bundles.text, store, text_cache_dir=bundles.cache / "text")


@pytest.fixture(scope="module")
def client(bundles, tmp_path_factory):
    app = create_app(_service(bundles, tmp_path_factory.mktemp("api") / "events.sqlite"), max_body_bytes=64 * 1024)
    with TestClient(app) as test_client:
        yield test_client


def _recommended(client, user: str, **params) -> list[str]:
    response = client.get(f"/v1/users/{user}/recommendations", params={"k": 10, **params})
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def test_ingested_events_change_the_recommendations_at_once(client, bundles):
    user = user_with_history(bundles.events)
    before = _recommended(client, user)
    state = client.get(f"/v1/users/{user}/state").json()
    assert state["known"] and len(state["recent_items"]) >= 5  # starts from the bundle's stored history
    items = bundles.events.filter(pl.col("user_id") != user)["item_id"].drop_nulls().unique().sort()[:4].to_list()
    batch = [event(f"chg-{i}", user, item, NOW - 60 + i, "add_to_cart") for i, item in enumerate(items)]
    body = client.post("/v1/events", json={"events": batch}).json()
    assert body["stored"] == 4 and body["rejected"] == []
    assert client.get(f"/v1/users/{user}/state").json()["recent_items"][-4:] == items
    after = _recommended(client, user)
    assert after != before
    assert not set(after) & set(items)  # just-seen items are filtered out
    stored = client.get(f"/v1/users/{user}/events").json()["events"]
    assert [e["event_id"] for e in stored][-4:] == [f"chg-{i}" for i in range(4)]
    assert {e["event_type"] for e in stored} == {"cart"}  # "add_to_cart" read like in a file


def test_events_are_idempotent_on_event_id(client, bundles):
    item = bundles.events["item_id"].drop_nulls()[0]
    batch = [event("idem-1", "idem-user", item, NOW - 10), event("idem-2", "idem-user", item, NOW - 5, "purchase")]
    first = client.post("/v1/events", json={"events": batch}).json()
    second = client.post("/v1/events", json={"events": batch}).json()
    assert (first["stored"], first["duplicates"]) == (2, 0)
    assert (second["stored"], second["duplicates"]) == (0, 2)
    assert [a["status"] for a in second["accepted"]] == ["duplicate", "duplicate"]
    assert len(client.get("/v1/users/idem-user/events").json()["events"]) == 2
    assert len(client.get("/v1/users/idem-user/state").json()["recent_items"]) == 2


def test_bad_events_are_rejected_one_by_one_with_the_file_reasons(client, bundles):
    item = bundles.events["item_id"].drop_nulls()[0]
    batch = [
        event("ok-1", "rej-user", item, "2026-01-05T10:00:00Z"),
        event("bad-time", "rej-user", item, "not a time"),
        event("bad-type", "rej-user", item, "2026-01-05T10:00:00Z", "teleport"),
        {"event_id": "no-user", "item_id": item, "timestamp": "2026-01-05T10:00:00Z"},
        event("future", "rej-user", item, "2099-01-01T00:00:00Z"),
        event("negative", "rej-user", item, "2026-01-05T10:00:00Z", "purchase", quantity=-2),
        event("ok-1", "rej-user", item, "2026-01-05T10:00:01Z"),
    ]
    body = client.post("/v1/events", json={"events": batch}).json()
    reasons = {r["event_id"]: r["reason"] for r in body["rejected"]}
    assert reasons == {"bad-time": "unparsable_timestamp", "bad-type": "unknown_event_type", "no-user": "missing_user_id",
                       "future": "future_timestamp", "negative": "negative_quantity", "ok-1": "duplicate_event_id"}
    assert [a["event_id"] for a in body["accepted"]] == ["ok-1"] and body["accepted"][0]["index"] == 0
    assert all(r["detail"] for r in body["rejected"])


def test_cold_start_users_and_sessions_get_popular_items_flagged(client, bundles):
    response = client.get("/v1/users/nobody-at-all/recommendations", params={"k": 5}).json()
    assert response["source"] == "popular" and len(response["items"]) == 5
    unknown = client.post("/v1/recommendations", json={"sequence": ["no-such-item"], "k": 3}).json()
    assert unknown["source"] == "popular"
    items = bundles.events["item_id"].drop_nulls().unique().sort()[:2].to_list()
    session = client.post("/v1/recommendations", json={
        "sequence": [items[0], {"item_id": items[1], "event_type": "cart", "timestamp": NOW}], "k": 5}).json()
    assert session["source"] == "model" and len(session["items"]) == 5
    assert not {i["item_id"] for i in session["items"]} & set(items)
    kept = client.post("/v1/recommendations", json={"sequence": items, "k": 300, "filter_seen": False}).json()
    assert set(items) <= {i["item_id"] for i in kept["items"]}


def test_category_filter_and_unknown_category(client, bundles):
    user = user_with_history(bundles.events)
    response = client.get(f"/v1/users/{user}/recommendations", params={"k": 5, "category": "Books"}).json()
    assert len(response["items"]) == 5
    features = _features(client)
    categories = dict(zip(features.item_ids.tolist(), features.category.tolist()))
    paths = features.vocabularies.categories
    assert all(paths[categories[i["item_id"]] - 2].startswith("Books >") for i in response["items"])
    missing = client.get(f"/v1/users/{user}/recommendations", params={"category": "Spaceships"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def _features(client):
    return client.app.state.service.engine.model.item_features_


def test_similar_items_and_unknown_item(client, bundles):
    item = bundles.events["item_id"].drop_nulls().mode()[0]
    body = client.get(f"/v1/items/{item}/similar", params={"k": 5}).json()
    assert len(body["items"]) == 5 and item not in [i["item_id"] for i in body["items"]]
    assert [i["score"] for i in body["items"]] == sorted((i["score"] for i in body["items"]), reverse=True)
    missing = client.get("/v1/items/no-such-item/similar")
    assert missing.status_code == 404 and "unknown item" in missing.json()["detail"]


def test_text_search_finds_an_item_by_its_title_and_reranks_for_a_user(client, bundles):
    features = _features(client)
    catalog = pl.read_csv(bundles.text.parent / "shop" / "catalog.csv", infer_schema=False)
    title, item = catalog.filter(pl.col("item_id").is_in(features.item_ids.tolist())).select("title", "item_id").row(0)
    found = client.get("/v1/search", params={"q": title, "k": 5}).json()
    assert item in [i["item_id"] for i in found["items"][:3]] and not found["personalised"]
    user = user_with_history(bundles.events)
    personal = client.get("/v1/search", params={"q": title, "k": 5, "user_id": user}).json()
    assert personal["personalised"] and len(personal["items"]) == 5
    assert any(i["personal_score"] != 0 for i in personal["items"])


def test_predictions_without_prediction_heads_say_how_to_add_them(client):
    response = client.get("/v1/users/idem-user/predictions")
    assert response.status_code == 404
    body = response.json()
    assert "no prediction heads" in body["detail"] and "tasks" in body["hint"]


def test_forgetting_a_user_leaves_no_trace_even_after_a_restart(client, bundles, tmp_path):
    user = user_with_history(bundles.events, nth=-1)
    item = bundles.events["item_id"].drop_nulls()[0]
    client.post("/v1/events", json={"events": [event("forget-1", user, item, NOW - 30)]})
    forgotten = client.delete(f"/v1/users/{user}").json()
    assert forgotten == {"user_id": user, "deleted_events": 1, "erased_from": ["event store", "user state", "bundle history"]}
    assert client.get(f"/v1/users/{user}/export").json() == {"user_id": user, "stored_events": [], "model_history": [],
                                                             "forgotten": True, "decisions": []}
    assert client.get(f"/v1/users/{user}/events").json()["events"] == []
    assert client.get(f"/v1/users/{user}/state").json() == {"user_id": user, "known": False, "recent_items": []}
    assert client.get(f"/v1/users/{user}/recommendations").json()["source"] == "popular"
    store = client.app.state.service.store.location
    with TestClient(create_app(_service(bundles, store))) as restarted:
        assert restarted.get(f"/v1/users/{user}/state").json()["known"] is False


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'shopformer_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'shopformer_request_seconds_bucket{method="GET",route="/healthz",le="+Inf"}' in text
    assert 'shopformer_events_total{outcome="stored"}' in text and "shopformer_model_info{version=" in text


@pytest.mark.parametrize("payload", [
    {"events": [{"event_id": "x", "user_id": "u", "item_id": "i", "timestamp": 1, "colour": "red"}]},
    {"events": [{"event_id": "x", "user_id": ["u"], "item_id": "i", "timestamp": 1}]},
    {"events": [{"user_id": "u", "item_id": "i", "timestamp": 1}]},
    {"events": []},
    {"events": "not a list"},
    {"evnts": []},
    {"events": [{"event_id": "x", "user_id": "u", "item_id": "i", "timestamp": 1}], "time_format": "sometimes"},
])
def test_malformed_event_payloads_are_422_json(client, payload):
    response = client.post("/v1/events", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_input")


def test_broken_json_oversized_bodies_and_bad_parameters_are_4xx_json(client):
    broken = client.post("/v1/events", content=b'{"events": [', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"] == "invalid_request"
    huge = client.post("/v1/events", content=b"x" * (65 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    for url in ("/v1/users/u/recommendations?k=0", "/v1/users/u/recommendations?k=abc", "/v1/search?q="):
        response = client.get(url)
        assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert client.get("/v1/nothing-here").json()["error"] == "not_found"


def test_reload_swaps_bundles_and_keeps_ingested_events(bundles, tmp_path):
    with TestClient(create_app(_service(bundles, tmp_path / "events.sqlite"))) as test_client:
        item = bundles.events["item_id"].drop_nulls()[0]
        test_client.post("/v1/events", json={"events": [event("rl-1", "reload-user", item, NOW - 5)]})
        old = test_client.get("/healthz").json()["model_version"]
        reloaded = test_client.post("/v1/admin/reload", json={"bundle": str(bundles.ids_only)}).json()
        assert reloaded["model_version"] != old and reloaded["bundle"] == str(bundles.ids_only)
        assert test_client.get("/v1/users/reload-user/state").json()["recent_items"] == [item]
        search = test_client.get("/v1/search", params={"q": "anything"})
        assert search.status_code == 409 and "no item text embeddings" in search.json()["detail"]
        missing = test_client.post("/v1/admin/reload", json={"bundle": str(bundles.text.parent / "nope")})
        assert missing.status_code == 422 and test_client.get("/healthz").json()["model_version"] == reloaded["model_version"]
        outside = test_client.post("/v1/admin/reload", json={"bundle": str(tmp_path)})  # not under the bundles' folder
        assert outside.status_code == 403 and outside.json()["error"] == "outside_bundle_root"


def test_one_event_histories_score_beside_longer_cold_ones(client, bundles):
    item = bundles.events["item_id"].drop_nulls()[0]
    client.post("/v1/events", json={"events": [event("one-1", "one-event-user", item, NOW - 5)]})
    engine = client.app.state.service.engine
    queries = [RecommendationQuery(engine.states.history("one-event-user"), 3),
               RecommendationQuery(engine.states.session(["nope-1", "nope-2", "nope-3"], [None] * 3, [None] * 3), 3)]
    one, cold = engine.recommend(queries)
    assert (one.source, cold.source) == ("model", "popular") and len(one.item_ids) == len(cold.item_ids) == 3
