"""The PostgreSQL event store, on a throw-away local cluster.

`make test` installs the server (scripts/install-system-packages.sh) and psycopg (the `postgres`
extra); elsewhere the tests skip without them, and in CI (`CI` set) they fail instead of skipping."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shopformer.serve.app import create_app
from shopformer.serve.service import Service
from tests.serve.conftest import event, free_port, user_with_history


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the PostgreSQL tests (make test installs what they need)")
    pytest.skip(reason)


def _psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the PostgreSQL store is the optional `postgres` extra")


def _server_binary(name: str) -> str | None:
    """`initdb`/`pg_ctl` on PATH, or in Debian's versioned folder (newest first), which is not on PATH."""
    versioned = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return shutil.which(name) or next(iter(versioned), None)


def _as_cluster_owner(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the postgres account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="module")
def postgres_url():
    _psycopg()
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if not (initdb and pg_ctl) or (os.geteuid() == 0 and not shutil.which("runuser")):
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's folders: those are private to the test user, and the cluster owner may differ.
    folder = Path(tempfile.mkdtemp(prefix="shopformer-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(_as_cluster_owner([initdb, "-D", str(data), "-A", "trust", "-U", "shop"]), check=True, capture_output=True)
    subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-o", f"-p {port} -k {folder} -h 127.0.0.1",
                                      "-l", str(folder / "log"), "-w", "start"]), check=True, capture_output=True)
    yield f"postgresql://shop@127.0.0.1:{port}/postgres"
    subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_the_service_runs_on_a_postgres_store_and_rebuilds_from_it(bundles, postgres_url):
    user = user_with_history(bundles.events, nth=4)
    items = bundles.events["item_id"].drop_nulls().unique().sort()[:3].to_list()
    now = int(time.time())
    batch = [event(f"pg-{i}", user, item, now - 10 + i, "cart", quantity=1) for i, item in enumerate(items)]
    with TestClient(create_app(Service.open(bundles.text, postgres_url))) as client:
        assert client.post("/v1/events", json={"events": batch}).json()["stored"] == 3
        assert client.post("/v1/events", json={"events": batch}).json()["duplicates"] == 3
        assert client.get(f"/v1/users/{user}/state").json()["recent_items"][-3:] == items
    with TestClient(create_app(Service.open(bundles.text, postgres_url))) as client:
        assert client.get(f"/v1/users/{user}/state").json()["recent_items"][-3:] == items
        stored = client.get(f"/v1/users/{user}/events").json()["events"]
        assert [e["event_id"] for e in stored] == ["pg-0", "pg-1", "pg-2"] and stored[0]["quantity"] == 1.0
        assert client.delete(f"/v1/users/{user}").json()["deleted_events"] == 3
    with TestClient(create_app(Service.open(bundles.text, postgres_url))) as client:
        assert client.get(f"/v1/users/{user}/state").json() == {"user_id": user, "known": False, "recent_items": []}


def test_an_unreachable_postgres_store_is_a_one_line_error():
    _psycopg()
    from shopformer.errors import ShopformerError
    from shopformer.serve.store import open_store

    with pytest.raises(ShopformerError, match="cannot connect to the PostgreSQL event store"):
        open_store(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
