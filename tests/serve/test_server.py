"""`shopformer serve` as a real process on 127.0.0.1: auth, ingestion, forgetting, reload, bad input."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.serve.conftest import API_KEY, event, start_server, user_with_history

NOW = int(time.time())
KEY = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def server(bundles, key_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    running = start_server(bundles.text, folder / "events.sqlite", bundles.cache, "--api-key-file", str(key_file),
                           "--max-body-mb", "0.25", log=folder / "server.log")
    yield running
    running.stop()


def _items(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def test_with_a_key_file_every_endpoint_but_health_and_metrics_needs_the_key(server, bundles):
    item = bundles.events["item_id"].drop_nulls()[0]
    body = {"events": [event("auth-1", "auth-user", item, NOW - 5)]}
    with server.client() as client:
        for headers in ({}, {"X-API-Key": "wrong"}):
            for response in (client.post("/v1/events", json=body, headers=headers),
                             client.delete("/v1/users/auth-user", headers=headers),
                             client.post("/v1/admin/reload", headers=headers),
                             client.get("/v1/users/auth-user/events", headers=headers),
                             client.get("/v1/users/auth-user/recommendations", headers=headers)):
                assert response.status_code == 401 and response.json()["error"] == "missing_or_wrong_x-api-key_header"
        assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200
        assert client.get("/v1/users/auth-user/events", headers=KEY).json()["events"] == []
        assert client.post("/v1/events", json=body, headers=KEY).json()["stored"] == 1
        assert client.get("/v1/users/auth-user/recommendations", headers=KEY).status_code == 200


def test_ingesting_events_changes_a_known_users_recommendations(server, bundles):
    user = user_with_history(bundles.events, nth=1)
    items = bundles.events["item_id"].drop_nulls().unique().sort()[-3:].to_list()
    with server.client(headers=KEY) as client:
        before = _items(client.get(f"/v1/users/{user}/recommendations", params={"k": 10}))
        batch = [event(f"e2e-{i}", user, item, NOW - 30 + i, "cart") for i, item in enumerate(items)]
        assert client.post("/v1/events", json={"events": batch}).json()["stored"] == 3
        after = _items(client.get(f"/v1/users/{user}/recommendations", params={"k": 10}))
        assert after != before and not set(after) & set(items)
        assert client.get(f"/v1/users/{user}/state").json()["recent_items"][-3:] == items


def test_forgetting_a_user_over_http(server, bundles):
    user = user_with_history(bundles.events, nth=2)
    item = bundles.events["item_id"].drop_nulls()[0]
    with server.client(headers=KEY) as client:
        client.post("/v1/events", json={"events": [event("fg-1", user, item, NOW - 5)]})
        assert client.delete(f"/v1/users/{user}").json()["deleted_events"] == 1
        assert client.get(f"/v1/users/{user}/events").json()["events"] == []
        assert client.get(f"/v1/users/{user}/state").json()["recent_items"] == []
        assert client.get(f"/v1/users/{user}/recommendations").json()["source"] == "popular"


def test_reload_under_load_fails_no_request(server, bundles):
    user = user_with_history(bundles.events, nth=3)
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with server.client(headers=KEY) as client:
            while not stop.is_set():
                response = client.get(f"/v1/users/{user}/recommendations", params={"k": 5})
                statuses.append(response.status_code)
                versions.add(response.json().get("model_version", "?"))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    reloads = []
    try:
        with server.client(headers=KEY) as client:
            for bundle in [bundles.ids_only, bundles.text] * 4:
                reloads.append(client.post("/v1/admin/reload", json={"bundle": str(bundle)}))
                time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert [r.status_code for r in reloads] == [200] * 8
    assert len(statuses) > 20 and set(statuses) == {200}
    assert {r.json()["model_version"] for r in reloads} <= versions  # requests were served by both bundles
    with server.client() as client:
        assert "shopformer_reloads_total 8" in client.get("/metrics").text


@pytest.mark.parametrize("content", [
    b'{"events": [{"event_id": "a"',                                       # malformed JSON
    b'{"events": [{"event_id": "a", "user_id": {"x": 1}}]}',              # wrong type
    b'{"events": [{"event_id": "a", "user_id": "u", "price": 3}]}',        # unknown field
    b'{"events": [{"event_id": "a", "user_id": "u", "timestamp": [1]}]}',  # timestamp of the wrong type
    b'[1, 2, 3]',
    b'\xff\xfe binary',
])
def test_bad_payloads_are_4xx_json_never_500(server, content):
    with server.client(headers={**KEY, "content-type": "application/json"}) as client:
        response = client.post("/v1/events", content=content)
    assert 400 <= response.status_code < 500 and "error" in response.json()


def test_huge_bodies_are_413_declared_or_streamed(server):
    with server.client(headers={**KEY, "content-type": "application/json"}) as client:
        declared = client.post("/v1/events", content=b" " * 300_000)
        streamed = client.post("/v1/events", content=iter([b" " * 65536] * 6))  # chunked: no Content-Length
    for response in (declared, streamed):
        assert response.status_code == 413 and response.json()["error"] == "body_too_large"


def test_invalid_timestamps_are_rejected_per_event_with_the_reason(server, bundles):
    item = bundles.events["item_id"].drop_nulls()[0]
    # Like a file column, a batch's timestamps share one format: the odd one out is rejected.
    batch = [event("ts-ok", "ts-user", item, "2026-02-01T10:00:00Z"), event("ts-ms", "ts-user", item, NOW * 1000),
             event("ts-bad", "ts-user", item, "yesterday-ish"), event("ts-ok2", "ts-user", item, "2026-02-01T10:00:05Z")]
    with server.client(headers=KEY) as client:
        body = client.post("/v1/events", json={"events": batch}).json()
        session = client.post("/v1/recommendations", json={"sequence": [{"item_id": item, "timestamp": "soon"}]})
    assert [(r["event_id"], r["reason"]) for r in body["rejected"]] == [
        ("ts-ms", "unparsable_timestamp"), ("ts-bad", "unparsable_timestamp"),
    ]
    assert "ISO-8601" in body["rejected"][0]["detail"] and body["stored"] == 2
    assert session.status_code == 422


def test_cli_refuses_bad_arguments_in_one_line(tmp_path, key_file):
    empty = tmp_path / "empty-key.txt"
    empty.write_text("\n")
    for args in (["--bundle", str(tmp_path / "missing")], ["--bundle", str(tmp_path), "--api-key-file", str(empty)]):
        result = subprocess.run([sys.executable, "-m", "shopformer", "serve", *args, "--store", str(tmp_path / "s.sqlite")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stderr.strip().startswith("error:")
