"""`/dashboard`: the live dashboard's pages, and the JSON they need beyond the public API.

    app.include_router(dashboard_router(service))

Pages (`shopformer.report.dashboard`; no key needed, they hold no data): `/dashboard` (segment map,
live feed of ingested events, model health) and `/dashboard/user` (search, event timeline, profile,
predictions, recommendations, explanations). JSON under `/dashboard/api/`: `info` (open: which
optional endpoints this service has, so the pages never call a missing one), `health` (`read`),
`users`, `feed`, `segments` and `users/{id}/timeline` (`read-personal`; the timeline is audited
as a read, like `GET /v1/users/{id}/events`).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections import deque
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from starlette.exceptions import HTTPException
from threadpoolctl import threadpool_limits

from shopformer.data.codes import FIRST_CODE
from shopformer.errors import ShopformerError
from shopformer.report.dashboard import ASSET_TYPES, asset_files
from shopformer.report.inputs import source_description
from shopformer.report.insight_inputs import user_insight
from shopformer.serve.access import requires
from shopformer.serve.engine import Engine, UnavailableError
from shopformer.serve.service import Service

__all__ = ["FEED_SIZE", "MAP_USERS", "LiveFeed", "dashboard_router"]

#: Ingested events the live feed keeps (in memory only; a forgotten user's are dropped at once).
FEED_SIZE = 200
#: Most users on the dashboard's segment map (a fixed sample beyond that keeps the page light).
MAP_USERS = 3000
#: Optional API routes the user page reads, by the name `info` reports them under.
_OPTIONAL_ROUTES = {"profile": "/v1/users/{user_id}/profile", "explanations": "/v1/users/{user_id}/explanations",
                    "predictions": "/v1/users/{user_id}/predictions", "recommendations": "/v1/users/{user_id}/recommendations"}


class LiveFeed:
    """The last `size` events the service stored, as they were posted, each with a rising cursor."""

    def __init__(self, size: int = FEED_SIZE) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=size)
        self.cursor = 0

    def record(self, posted: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        """Adds the posted events that `Service.ingest` answered as newly stored."""
        now = time.time()
        for accepted in answer["accepted"]:
            if accepted["status"] == "stored":
                self.cursor += 1
                event = posted[accepted["index"]]
                self.events.append({"cursor": self.cursor, "received_at": now, "event_id": accepted["event_id"],
                                    **{k: event.get(k) for k in ("user_id", "item_id", "event_type", "timestamp")}})

    def forget(self, user_id: str) -> None:
        kept = [e for e in self.events if str(e["user_id"]) != user_id]
        self.events.clear()
        self.events.extend(kept)

    def after(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Events with a cursor above `cursor`, oldest first, at most the newest `limit`."""
        return [e for e in self.events if e["cursor"] > cursor][-limit:]

    def attach(self, service: Service) -> None:
        """Records what `service` stores and drops what it forgets. The service has no event hooks, so
        its `ingest` and `forget` are wrapped on the instance (the routes look them up per request)."""
        ingest, forget = service.ingest, service.forget

        async def recording_ingest(events: list[dict[str, Any]], time_format: str) -> dict[str, Any]:
            answer = await ingest(events, time_format)
            self.record(events, answer)
            return answer

        async def forgetting(user_id: str) -> int:
            self.forget(user_id)
            return await forget(user_id)

        service.ingest, service.forget = recording_ingest, forgetting


def dashboard_router(service: Service) -> APIRouter:
    """The dashboard's pages and JSON over `service` (its live feed starts recording now)."""
    router, feed, cache = APIRouter(include_in_schema=False), LiveFeed(), _EngineCache()
    feed.attach(service)
    read, personal = requires(service.access, "read"), requires(service.access, "read-personal")
    files = asset_files()

    @router.get("/dashboard")
    async def overview() -> FileResponse:
        return FileResponse(files["index.html"], media_type=ASSET_TYPES[".html"])

    @router.get("/dashboard/user")
    async def user_page() -> FileResponse:
        return FileResponse(files["user.html"], media_type=ASSET_TYPES[".html"])

    @router.get("/dashboard/")
    async def slash() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    @router.get("/dashboard/assets/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in files:  # only the dashboard's own files: no path ever reaches the disk
            raise HTTPException(404, "Not Found")
        return FileResponse(files[name], media_type=ASSET_TYPES[files[name].suffix])

    @router.get("/dashboard/api/info")
    async def info(request: Request) -> dict[str, Any]:
        paths = {getattr(route, "path", None) for route in request.app.routes}
        endpoints = {name: path in paths for name, path in _OPTIONAL_ROUTES.items()}
        endpoints["predictions"] = endpoints["predictions"] and _has_prediction_heads(service.engine)
        return {"model_version": service.engine.version, "needs_key": not service.access.open, "endpoints": endpoints}

    @router.get("/dashboard/api/health", dependencies=read)
    async def health() -> dict[str, Any]:
        return {**await service.health(), **cache.facts(service.engine), "requests": _request_table(service),
                "events": dict(service.metrics.events), "reloads": service.metrics.reloads, "shed": service.metrics.shed,
                "feed": _feed_health(service.engine, feed)}

    @router.get("/dashboard/api/feed", dependencies=personal)
    async def live_feed(after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=FEED_SIZE)] = 50) -> dict[str, Any]:
        return {"cursor": feed.cursor, "events": feed.after(after, limit)}

    @router.get("/dashboard/api/users", dependencies=personal)
    async def users(q: Annotated[str, Query(max_length=200)] = "", limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """User ids starting with `q`: recently ingested ones first (newest), then the bundle's (unless the
        bundle's ids are pseudonyms, which requests never carry)."""
        recent = list(dict.fromkeys(str(e["user_id"]) for e in reversed(feed.events) if str(e["user_id"]).startswith(q)))
        bundle = cache.users_starting(service.engine, q, limit) if service.pseudonymiser is None else []
        known = [u for u in bundle if u not in recent]
        return {"users": (recent + known)[:limit]}

    @router.get("/dashboard/api/segments", dependencies=personal)
    async def segments() -> dict[str, Any]:
        return await cache.segments(service.engine)

    audited = requires(service.access, "read-personal", audit="read", stored_id=service.stored_id)

    @router.get("/dashboard/api/users/{user_id}/timeline", dependencies=audited)
    async def timeline(user_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        """The user's events newest first: those the service stored, then the bundle's history of them."""
        engine, stored_id = service.engine, service.stored_id(user_id)
        ingested = [{**e, "source": "ingested", "category": _category(engine, engine.item_codes.get(e["item_id"]))}
                    for e in await service.user_events(user_id)]
        history = [] if engine.states.is_forgotten(stored_id) else _bundle_history(engine, stored_id)
        events = sorted(history + ingested, key=lambda e: e["timestamp"] if e["timestamp"] is not None else -1, reverse=True)
        return {"user_id": user_id, "known": engine.states.knows(stored_id), "n_events": len(events), "events": events[:limit]}

    return router


class _EngineCache:
    """What the dashboard derives from one bundle (sorted user ids, facts, the segment map), per engine version."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.values: dict[str, Any] = {}
        self.lock = asyncio.Lock()

    def _for(self, engine: Engine) -> dict[str, Any]:
        if engine.version != self.version:  # a reload swapped the bundle: start over
            self.version, self.values = engine.version, {}
        return self.values

    def users_starting(self, engine: Engine, prefix: str, limit: int) -> list[str]:
        values = self._for(engine)
        if "users" not in values:
            values["users"] = sorted(engine.model.known_users())
        ids = values["users"]
        start = bisect.bisect_left(ids, prefix)
        return [u for u in ids[start : start + limit] if u.startswith(prefix)]

    def facts(self, engine: Engine) -> dict[str, Any]:
        """The bundle's training result and task-model test metrics (read once per bundle)."""
        values = self._for(engine)
        if "facts" not in values:
            meta = engine.meta
            best = next((m for m in meta.get("history", []) if m.get("epoch") == meta.get("best_epoch")), {})
            tasks_file = engine.bundle_dir / "tasks" / "tasks.json"
            tasks = json.loads(tasks_file.read_text(encoding="utf-8")).get("tasks", {}) if tasks_file.is_file() else {}
            values["facts"] = {
                "created": meta.get("created"), "last_event": engine.model.last_event_time(),
                "training": {"best_epoch": meta.get("best_epoch"), "valid_ndcg@10": best.get("valid_ndcg@10"),
                             "train_seconds": meta.get("train_seconds")},
                "tasks": {task: {"model": entry.get("model"), **entry.get("test_metrics", {})} for task, entry in tasks.items()},
            }
        return values["facts"]

    async def segments(self, engine: Engine) -> dict[str, Any]:
        async with self.lock:  # one fit per bundle, however many pages ask at once
            values = self._for(engine)
            if "segments" not in values:
                values["segments"] = await run_in_threadpool(_segment_map, engine)
            return values["segments"]


def _segment_map(engine: Engine) -> dict[str, Any]:
    """The map's points and the segment table, or why there are none (too few users, no events)."""
    try:
        # The engine's own insight: the log, catalog, segments and population its profiles read.
        insight = engine.insight.insight
        source = source_description(insight)
        with threadpool_limits(limits=1):  # k-means threads would contend with the model thread's
            result = user_insight(insight, max_users=MAP_USERS)
    except ShopformerError as exc:
        return {"points": [], "segments": [], "note": str(exc)}
    points = result.points.select("user_id", "x", "y", "segment").to_dict(as_series=False)
    return {"points": points, "segments": result.summary.to_dicts(), "note": f"Users from {source}."}


def _has_prediction_heads(engine: Engine) -> bool:
    try:
        engine.check_prediction_heads()
    except UnavailableError:
        return False
    return True


def _category(engine: Engine, code: int | None) -> str | None:
    if code is None:
        return None
    features = engine.model.item_features
    category = int(features.category[code])
    return features.vocabularies.categories[category - FIRST_CODE] if category >= FIRST_CODE else None


def _bundle_history(engine: Engine, stored_id: str) -> list[dict[str, Any]]:
    history = engine.model.user_histories([stored_id])
    times = history.timestamps if history.timestamps is not None else [None] * len(history.items)
    types = history.event_types if history.event_types is not None else [None] * len(history.items)
    return [{"item_id": engine.item_ids[item] or None, "event_type": None if kind is None else engine.event_name(int(kind)),
             "timestamp": None if at is None else int(at), "source": "bundle", "category": _category(engine, int(item))}
            for item, kind, at in zip(history.items.tolist(), list(types), list(times))]


def _request_table(service: Service) -> list[dict[str, Any]]:
    """Per route: requests, server errors, mean and 95th-percentile latency (the bucket bound it falls under)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for (method, route, status), n in service.metrics.requests.items():
        entry = counts.setdefault((method, route), [0, 0])
        entry[0] += n
        entry[1] += n if status >= 500 else 0
    rows = []
    for (method, route), (n, errors) in sorted(counts.items(), key=lambda item: -item[1][0]):
        histogram = service.metrics.latency.get((method, route))
        mean = histogram.total / max(sum(histogram.counts), 1) if histogram else None
        rows.append({"method": method, "route": route, "requests": n, "server_errors": errors,
                     "mean_ms": None if mean is None else round(mean * 1000, 2), "p95_ms": _p95_ms(histogram)})
    return rows


def _p95_ms(histogram) -> float | None:
    if histogram is None or not sum(histogram.counts):
        return None
    cumulative = np.cumsum(histogram.counts) / sum(histogram.counts)
    at = int(np.searchsorted(cumulative, 0.95))
    return round(histogram.buckets[at] * 1000, 2) if at < len(histogram.buckets) else None


def _feed_health(engine: Engine, feed: LiveFeed) -> dict[str, Any]:
    """Recent ingestion: how many events the feed holds and the share of their items the bundle does not know."""
    items = [e["item_id"] for e in feed.events if e["item_id"] is not None]
    unknown = sum(str(i) not in engine.item_codes for i in items)
    last = feed.events[-1]["received_at"] if feed.events else None
    return {"recent_events": len(feed.events), "unknown_item_share": round(unknown / len(items), 4) if items else None,
            "last_received_at": last}
