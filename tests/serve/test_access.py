"""Scoped API keys, rate limits, the reload root and the audit log, through the real app."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopformer.cli import app as cli
from shopformer.errors import ConfigError
from shopformer.serve.access import AccessControl, ApiKey, AuditLog, KeyFile, is_loopback, read_key_file
from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import event, user_with_history

NOW = int(time.time())
KEYS = {name: f"{name}-key-0123456789abcdef" for name in ("storefront", "analyst", "ingest", "ops")}
SCOPES = {"storefront": ("read",), "analyst": ("read-personal",), "ingest": ("write",), "ops": ("admin",)}


class FakeClock:
    """Seconds that move only when a test says so: rate limits without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def clock():
    return FakeClock()


@pytest.fixture(scope="module")
def client(bundles, task_bundle, tmp_path_factory, audit_path, clock):
    keys = [ApiKey(name=name, key=key, scopes=SCOPES[name]) for name, key in KEYS.items()]
    keys.append(ApiKey(name="limited", key="limited-key-0123456789", scopes=("read",), rate_limit=2))
    access = AccessControl(KeyFile(keys=tuple(keys)), AuditLog(audit_path), clock=clock)
    service = Service.open(task_bundle, tmp_path_factory.mktemp("access") / "events.sqlite", access=access,
                           text_cache_dir=bundles.cache / "text")
    with TestClient(create_app(service)) as test_client:
        yield test_client


def _as(name: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[name]}


PERSONAL = ("/v1/users/{user}/events", "/v1/users/{user}/state", "/v1/users/{user}/predictions", "/v1/users/{user}/export")


@pytest.mark.parametrize("path", PERSONAL)
def test_personal_data_needs_the_read_personal_scope(client, bundles, path):
    url = path.format(user=user_with_history(bundles.events))
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "not-a-key-0123456789"}).status_code == 401
    for name in ("storefront", "ingest"):
        refused = client.get(url, headers=_as(name))
        assert refused.status_code == 403 and refused.json()["error"] == "missing_scope", name
    for name in ("analyst", "ops"):  # admin holds every scope
        assert client.get(url, headers=_as(name)).status_code == 200, name


def test_each_scope_opens_its_endpoints_only(client, bundles):
    user, item = user_with_history(bundles.events), bundles.events["item_id"].drop_nulls()[0]
    recommendations = f"/v1/users/{user}/recommendations"
    assert [client.get(recommendations, headers=_as(n)).status_code for n in KEYS] == [200, 200, 403, 200]
    body = {"events": [event("scope-1", "scope-user", item, NOW - 5)]}
    assert client.post("/v1/events", json=body, headers=_as("storefront")).status_code == 403
    assert client.post("/v1/events", json=body, headers=_as("analyst")).status_code == 403
    assert client.post("/v1/events", json=body, headers=_as("ingest")).json()["stored"] == 1
    assert client.post("/v1/admin/reload", headers=_as("ingest")).status_code == 403
    assert client.post("/v1/admin/reload", headers=_as("ops")).status_code == 200
    assert client.post("/v1/admin/purge", json={"before": 0}, headers=_as("ingest")).status_code == 403
    assert client.post("/v1/admin/purge", json={"before": 0}, headers=_as("ops")).json()["deleted_events"] == 0
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_a_key_past_its_rate_gets_429_with_retry_after(client, clock):
    headers = {"X-API-Key": "limited-key-0123456789"}
    answers = [client.post("/v1/recommendations", json={"sequence": []}, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "rate_limited" and int(answers[2].headers["Retry-After"]) >= 1
    clock.now += 1.0  # a second later the key has two requests again
    assert client.post("/v1/recommendations", json={"sequence": []}, headers=headers).status_code == 200


def test_reads_and_erasures_of_personal_data_are_audited(client, bundles, audit_path):
    user = user_with_history(bundles.events, nth=6)
    client.get(f"/v1/users/{user}/events", headers=_as("analyst"))
    client.get(f"/v1/users/{user}/events", headers=_as("storefront"))
    client.get(f"/v1/users/{user}/export", headers=_as("analyst"))
    client.delete(f"/v1/users/{user}", headers=_as("ingest"))
    client.get(f"/v1/users/{user}/recommendations", headers=_as("storefront"))  # not personal data: not audited
    lines = [json.loads(line) for line in audit_path.read_text().splitlines()]
    mine = [(e["key"], e["action"], e["endpoint"], e["outcome"]) for e in lines if e["user_id"] == user]
    assert mine == [("analyst", "read", "GET /v1/users/{user_id}/events", "allowed"),
                    (None, "read", "GET /v1/users/{user_id}/events", "refused"),
                    ("analyst", "export", "GET /v1/users/{user_id}/export", "allowed"),
                    ("ingest", "erasure", "DELETE /v1/users/{user_id}", "allowed")]
    assert all(e["time"].endswith("+00:00") for e in lines)


def test_reload_outside_the_bundle_root_is_refused(client, tmp_path):
    refused = client.post("/v1/admin/reload", json={"bundle": str(tmp_path)}, headers=_as("ops"))
    assert refused.status_code == 403 and refused.json()["error"] == "outside_bundle_root"


def test_key_files_one_line_or_yaml(tmp_path):
    single = tmp_path / "key.txt"
    single.write_text("a-single-key-0123456789\n")
    (key,) = read_key_file(single).keys
    assert key.name == "default" and key.grants("admin") and key.grants("read-personal")
    scoped = tmp_path / "keys.yaml"
    scoped.write_text("keys:\n  - {name: web, key: web-key-0123456789ab, scopes: [read], rate_limit: 5}\n")
    (key,) = read_key_file(scoped).keys
    assert key.grants("read") and not key.grants("read-personal") and key.rate_limit == 5


@pytest.mark.parametrize(("text", "message"), [
    ("keys:\n  - {name: web, key: short, scopes: [read]}\n", "at least 16 characters"),
    ("keys:\n  - {name: web, key: web-key-0123456789ab, scopes: [reed]}\n", "scopes"),
    ("keys:\n  - {name: web, key: web-key-0123456789ab, scopes: [read], colour: red}\n", "colour"),
    ("keys:\n  - {name: a, key: same-key-0123456789ab, scopes: [read]}\n  - {name: a, key: other-key-0123456789, scopes: [read]}\n",
     "share a name"),
    ("keys: [\n", "not valid YAML"),
    ("", "the file is empty"),
])
def test_bad_key_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        read_key_file(path)
    assert str(path) in str(raised.value)


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "::", "shop.example"))


def test_serving_other_machines_without_keys_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--bundle", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--api-key-file" in result.output and "--insecure" in result.output
