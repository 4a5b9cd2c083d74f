"""Load shedding: past the in-flight limit a request waits briefly, then gets a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from shopformer.serve.limits import AdmissionLimit
from shopformer.serve.metrics import Metrics
from tests.serve.conftest import start_server, user_with_history


async def _slow_app(scope, receive, send) -> None:
    await asyncio.sleep(0.2)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_admitted_requests_are_bounded_and_the_rest_are_shed_at_once():
    metrics = Metrics()
    app = AdmissionLimit(_slow_app, metrics, max_in_flight=2, max_wait_s=0.05)

    async def burst():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
            started = time.perf_counter()
            answers = await asyncio.gather(*(client.get("/v1/users/u/recommendations") for _ in range(10)),
                                           client.get("/healthz"))
            return answers, time.perf_counter() - started

    answers, seconds = asyncio.run(burst())
    statuses = [a.status_code for a in answers[:-1]]
    assert statuses.count(200) == 2 and statuses.count(503) == 8 and metrics.shed == 8
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.headers["retry-after"] == "1" and shed.json()["error"] == "overloaded"
    assert answers[-1].status_code == 200  # health is never shed
    assert seconds < 0.35  # nobody queued behind the two in flight


def test_an_overloaded_server_sheds_with_retry_after(bundles, tmp_path):
    server = start_server(bundles.ids_only, tmp_path / "events.sqlite", bundles.cache, "--max-in-flight", "1",
                          "--max-wait-ms", "0", log=tmp_path / "server.log")
    user = user_with_history(bundles.events)
    try:
        def request(_: int) -> httpx.Response:
            with server.client() as client:
                return client.get(f"/v1/users/{user}/recommendations?k=10")

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(request, range(256)))
        shed = [a for a in answers if a.status_code == 503]
        assert {a.status_code for a in answers} <= {200, 503} and shed and len(shed) < len(answers)
        assert all(a.headers["retry-after"] == "1" and a.json()["hint"] for a in shed)
        with server.client() as client:
            assert f"shopformer_shed_total {len(shed)}" in client.get("/metrics").text
    finally:
        server.stop()
