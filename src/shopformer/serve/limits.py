"""Plain ASGI middlewares: the request-body size limit (413), load shedding (503) and per-route request metrics.

Plain ASGI rather than Starlette's `BaseHTTPMiddleware`: they add no task or copy per request,
which matters at a few milliseconds per recommendation.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from shopformer.serve.metrics import Metrics

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "DEFAULT_MAX_WAIT_S", "AdmissionLimit", "BodySizeLimit", "RequestMetrics"]

#: Load shedding: requests served at once, and how long one more waits for a slot before a 503.
DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_WAIT_S = 64, 0.5

Scope = dict[str, Any]


async def _send_json(send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimit:
    """Answers 413 (JSON) to a body larger than `max_bytes`, declared or streamed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self) -> dict[str, Any]:
        return {"error": "body_too_large", "detail": f"the request body is larger than {self.max_bytes} bytes",
                "hint": "send events in smaller batches"}

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send_json(send, 413, self._too_large())
        received, exceeded, started = 0, False, False

        async def limited_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}  # the app stops reading; we answer below
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if exceeded:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_json(send, 413, self._too_large())


class AdmissionLimit:
    """Load shedding: at most `max_in_flight` requests are served at once, and a request waits at most
    `max_wait_s` for a slot; past that it gets 503 with `Retry-After` instead of joining a queue that
    grows without bound. The latency of admitted requests then stays bounded under any overload.
    `/healthz` and `/metrics` are never shed: they are how an overloaded service is watched."""

    EXEMPT = frozenset({"/healthz", "/metrics"})

    def __init__(self, app, metrics: Metrics, max_in_flight: int, max_wait_s: float, retry_after_s: int = 1) -> None:
        self.app, self.metrics = app, metrics
        self.max_in_flight, self.max_wait_s, self.retry_after_s = max_in_flight, max_wait_s, retry_after_s
        self._slots: asyncio.Semaphore | None = None  # made on the serving event loop, at the first request

    async def _admitted(self) -> bool:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: no timer, no task
            return True
        try:
            await asyncio.wait_for(self._slots.acquire(), self.max_wait_s)
            return True
        except TimeoutError:
            return False

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.EXEMPT:
            return await self.app(scope, receive, send)
        if not await self._admitted():
            self.metrics.shed += 1
            body = {"error": "overloaded", "detail": f"more than {self.max_in_flight} requests in flight for "
                    f"{self.max_wait_s * 1000:g} ms", "hint": f"retry after {self.retry_after_s} s"}
            return await _send_json(send, 503, body, ((b"retry-after", str(self.retry_after_s).encode()),))
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


class RequestMetrics:
    """Counts requests by method, route template and status, and observes their latency."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def recording_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)
