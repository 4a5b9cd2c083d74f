"""Crash safety: `kill -9` while a client streams events loses no acknowledged event."""

from __future__ import annotations

import threading
import time

import httpx

from tests.serve.conftest import event, start_server

USERS = [f"crash-user-{n}" for n in range(4)]


def test_every_acknowledged_event_survives_kill_9(bundles, tmp_path):
    store = tmp_path / "events.sqlite"
    items = bundles.events["item_id"].drop_nulls().unique().sort().to_list()
    server = start_server(bundles.text, store, bundles.cache, log=tmp_path / "server.log")
    acknowledged: list[dict] = []
    failures: list[str] = []
    start = int(time.time()) - 10_000

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for batch_number in range(10_000):
                batch = [event(f"crash-{batch_number}-{i}", USERS[i % 4], items[(batch_number * 10 + i) % len(items)],
                               start + batch_number * 10 + i) for i in range(10)]
                try:
                    response = client.post("/v1/events", json={"events": batch})
                except httpx.HTTPError as error:  # the kill: this batch was never acknowledged
                    failures.append(type(error).__name__)
                    return
                assert response.status_code == 200
                stored = {a["event_id"] for a in response.json()["accepted"]}
                acknowledged.extend(e for e in batch if e["event_id"] in stored)

    client_thread = threading.Thread(target=stream)
    client_thread.start()
    while len(acknowledged) < 300 and client_thread.is_alive():
        time.sleep(0.02)
    server.kill()
    client_thread.join(30)
    assert failures and len(acknowledged) >= 300

    restarted = start_server(bundles.text, store, bundles.cache, log=tmp_path / "server.log")
    try:
        with restarted.client() as client:
            for user in USERS:
                mine = [e for e in acknowledged if e["user_id"] == user]
                stored = client.get(f"/v1/users/{user}/events").json()["events"]
                assert {e["event_id"] for e in mine} <= {e["event_id"] for e in stored}
                # The rebuilt state is the newest stored events, in time order.
                expected = [e["item_id"] for e in sorted(stored, key=lambda e: e["timestamp"])][-50:]
                assert client.get(f"/v1/users/{user}/state").json()["recent_items"] == expected
                assert mine[-1]["item_id"] in expected
    finally:
        restarted.stop()
