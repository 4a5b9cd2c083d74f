"""The dashboard's pages and JSON in process (FastAPI's TestClient): scopes, the audit log, the feed, the timeline."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from shopformer.serve.access import AccessControl, ApiKey, AuditLog, KeyFile
from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import event, user_with_history

READ, PERSONAL = {"X-API-Key": "read-key-0123456789"}, {"X-API-Key": "crm-key-0123456789"}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def client(report_bundles, tmp_path_factory, audit):
    keys = KeyFile(keys=(ApiKey(name="shop", key=READ["X-API-Key"], scopes=("read",)),
                         ApiKey(name="crm", key=PERSONAL["X-API-Key"], scopes=("read-personal", "write"))))
    service = Service.open(report_bundles.tasks, tmp_path_factory.mktemp("store") / "events.sqlite",
                           access=AccessControl(keys, AuditLog(audit)))
    with TestClient(create_app(service)) as test_client:
        yield test_client


def test_pages_are_open_and_data_needs_the_right_scope(client):
    for path in ("/dashboard", "/dashboard/user", "/dashboard/assets/common.js", "/dashboard/assets/style.css"):
        assert client.get(path).status_code == 200, path
    assert client.get("/dashboard/api/info").json()["needs_key"] is True
    assert client.get("/dashboard/api/health").status_code == 401
    assert client.get("/dashboard/api/health", headers=READ).json()["status"] == "ok"
    for path in ("/dashboard/api/feed", "/dashboard/api/users", "/dashboard/api/segments", "/dashboard/api/users/u1/timeline"):
        assert client.get(path, headers=READ).status_code == 403, path
        assert client.get(path, headers=PERSONAL).status_code == 200, path


@pytest.mark.parametrize("name", ["missing.js", "..%2Fhtml.py", "%2E%2E%2F__init__.py"])
def test_only_the_dashboards_own_files_are_served(client, name):
    assert client.get(f"/dashboard/assets/{name}").status_code == 404


def test_info_names_the_optional_endpoints_this_service_has(client):
    endpoints = client.get("/dashboard/api/info").json()["endpoints"]
    assert endpoints["predictions"] and endpoints["recommendations"]  # the bundle has task models


def test_the_timeline_merges_ingested_and_bundle_events_newest_first_and_is_audited(client, report_bundles, audit):
    user = user_with_history(report_bundles.events, nth=2)
    item = report_bundles.events["item_id"].drop_nulls()[0]
    now = int(time.time())
    posted = client.post("/v1/events", json={"events": [event("tl-1", user, item, now - 5, "cart")]}, headers=PERSONAL)
    assert posted.json()["stored"] == 1
    body = client.get(f"/dashboard/api/users/{user}/timeline", headers=PERSONAL).json()
    first, *rest = body["events"]
    assert (first["source"], first["item_id"], first["event_type"], first["timestamp"]) == ("ingested", item, "cart", now - 5)
    assert rest and {e["source"] for e in rest} == {"bundle"} and first["category"]
    assert [e["timestamp"] for e in body["events"]] == sorted((e["timestamp"] for e in body["events"]), reverse=True)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {"action": "read", "user_id": user, "outcome": "allowed", "key": "crm"}.items() <= lines[-1].items()


def test_the_feed_shows_stored_events_once_and_forgets_erased_users(client, report_bundles):
    item = report_bundles.events["item_id"].drop_nulls()[0]
    cursor = client.get("/dashboard/api/feed", headers=PERSONAL).json()["cursor"]
    batch = [event("fd-1", "feed-user", item, int(time.time()) - 3), event("fd-2", "other-user", item, int(time.time()) - 2)]
    for _ in range(2):  # the second time they are duplicates: not new in the feed
        client.post("/v1/events", json={"events": batch}, headers=PERSONAL)
    feed = client.get("/dashboard/api/feed", params={"after": cursor}, headers=PERSONAL).json()
    assert [e["event_id"] for e in feed["events"]] == ["fd-1", "fd-2"]
    assert client.get("/dashboard/api/users", params={"q": "feed-"}, headers=PERSONAL).json()["users"] == ["feed-user"]
    assert client.delete("/v1/users/feed-user", headers=PERSONAL).status_code == 200
    feed = client.get("/dashboard/api/feed", params={"after": cursor}, headers=PERSONAL).json()
    assert [e["event_id"] for e in feed["events"]] == ["fd-2"]


def test_user_search_lists_the_bundles_users_by_prefix(client, report_bundles):
    prefix = sorted(report_bundles.events["user_id"].unique().to_list())[0][:4]
    found = client.get("/dashboard/api/users", params={"q": prefix, "limit": 5}, headers=PERSONAL).json()["users"]
    assert len(set(found)) == 5 and all(u.startswith(prefix) for u in found)
    assert client.get("/dashboard/api/users", params={"q": "nobody-"}, headers=PERSONAL).json()["users"] == []
