"""The HTTP API (FastAPI) over a `Service`: routes, API-key checks, JSON errors, body-size limit, metrics.

Every error is a JSON body `{"error": code, "detail": ..., "hint": ...}`: 401 without a valid
`X-API-Key` where keys are configured, 403 when the key lacks the endpoint's scope or a reload names
a bundle outside the bundle root, 404 for unknown items/routes, 409 for what the bundle cannot do,
413 for an oversized body, 422 for malformed or unknown fields, 429 (with `Retry-After`) past a
key's rate limit. Which scope each endpoint needs is in `_add_routes`; see `serve.access`.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from shopformer._version import __version__
from shopformer.errors import ShopformerError
from shopformer.policy.log import OutcomeConflict
from shopformer.serve.access import AccessDenied, RateLimited, requires
from shopformer.serve.dashboard import dashboard_router
from shopformer.serve.engine import Engine, Recommendation, UnavailableError
from shopformer.serve.limits import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_WAIT_S, AdmissionLimit, BodySizeLimit, RequestMetrics
from shopformer.serve.schemas import (
    MAX_K,
    ErrorOut,
    EventsIn,
    EventsOut,
    ExplanationOut,
    ExportOut,
    ForgetOut,
    NextBestActionOut,
    OutcomeIn,
    OutcomeOut,
    PredictionsOut,
    ProfileOut,
    PurgeIn,
    PurgeOut,
    RecommendationsOut,
    ReloadIn,
    SearchOut,
    SessionIn,
    SimilarOut,
    UserEventsOut,
    UserStateOut,
)
from shopformer.serve.service import Service

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_IN_FLIGHT", "DEFAULT_MAX_WAIT_S", "create_app"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: What `DELETE /v1/users/{id}` erases: the store's events, the live state, and the bundle's history of
#: the user, hidden through the store's forgotten list (also after restarts and reloads).
ERASED_FROM = ("event store", "user state", "bundle history")
K = Annotated[int, Query(ge=1, le=MAX_K, description="how many items")]
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422, 429)}


def _error(status: int, error: str, detail: Any, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "hint": hint}, status_code=status)


def create_app(service: Service, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> FastAPI:
    """The ASGI application serving `service`; past `max_in_flight` concurrent requests, one waits
    at most `max_wait_s` for a slot before a 503 (load shedding)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="Shopformer", version=__version__, lifespan=lifespan, responses=_ERRORS,
                  description="Real-time recommendations, predictions and event ingestion over a Shopformer bundle.")
    app.state.service = service
    _add_error_handlers(app)
    _add_routes(app, service)
    app.include_router(dashboard_router(service))
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    app.add_middleware(AdmissionLimit, metrics=service.metrics, max_in_flight=max_in_flight, max_wait_s=max_wait_s)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        return _error(422, "invalid_request", errors, "see the OpenAPI schema at /docs")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail).lower().replace(" ", "_"), exc.detail)

    @app.exception_handler(AccessDenied)
    async def denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail)

    @app.exception_handler(RateLimited)
    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        response = _error(429, "rate_limited", str(exc), "slow down, or ask for a key with a higher rate_limit")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(UnavailableError)
    async def unavailable(_: Request, exc: UnavailableError) -> JSONResponse:
        return _error(exc.status, "not_available", str(exc), exc.hint)

    @app.exception_handler(OutcomeConflict)
    async def conflict(_: Request, exc: OutcomeConflict) -> JSONResponse:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(LookupError)
    async def not_found(_: Request, exc: LookupError) -> JSONResponse:
        return _error(404, "not_found", str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(ShopformerError)
    async def bad_input(_: Request, exc: ShopformerError) -> JSONResponse:
        return _error(422, "invalid_input", str(exc))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("request failed")
        return _error(500, "internal_error", f"{type(exc).__name__}: the server could not answer this request")


# The hot endpoints return a JSONResponse: their dicts are built to the response model already, and
# validating them again would cost more than scoring a micro-batch; `response_model` still documents them.
def _items(result: Recommendation) -> list[dict[str, Any]]:
    return [{"item_id": item, "score": score, "rank": rank}
            for rank, (item, score) in enumerate(zip(result.item_ids, result.scores), 1)]


def _add_routes(app: FastAPI, service: Service) -> None:
    access = service.access
    read, write, admin = requires(access, "read"), requires(access, "write"), requires(access, "admin")
    personal = requires(access, "read-personal", audit="read", stored_id=service.stored_id)
    erasure = requires(access, "write", audit="erasure", stored_id=service.stored_id)
    export = requires(access, "read-personal", audit="export", stored_id=service.stored_id)

    @app.post("/v1/events", response_model=EventsOut, dependencies=write, tags=["events"])
    async def post_events(body: EventsIn) -> JSONResponse:
        """Validates events like rows of a file, stores the accepted ones durably, updates the users' states."""
        return JSONResponse(await service.ingest([e.model_dump(exclude_none=True) for e in body.events], body.time_format))

    @app.get("/v1/users/{user_id}/events", response_model=UserEventsOut, dependencies=personal, tags=["users"])
    async def user_events(user_id: str) -> dict[str, Any]:
        return {"user_id": user_id, "events": await service.user_events(user_id)}

    @app.get("/v1/users/{user_id}/state", response_model=UserStateOut, dependencies=personal, tags=["users"])
    async def user_state(user_id: str) -> dict[str, Any]:
        """The recent items the model reads for this user (bundle history plus ingested events)."""
        return service.state(user_id)

    @app.delete("/v1/users/{user_id}", response_model=ForgetOut, dependencies=erasure, tags=["users"])
    async def forget_user(user_id: str) -> dict[str, Any]:
        """Forgets a user: stored events deleted, bundle history and state dropped; the answer says where."""
        deleted = await service.forget(user_id)
        places = [*ERASED_FROM, "decision log"] if service.actions is not None else list(ERASED_FROM)
        return {"user_id": user_id, "deleted_events": deleted, "erased_from": places}

    @app.get("/v1/users/{user_id}/export", response_model=ExportOut, dependencies=export, tags=["users"])
    async def export_user(user_id: str) -> dict[str, Any]:
        """Everything the service holds about the user (the right of access): stored events, model history."""
        return await service.export(user_id)

    @app.get("/v1/users/{user_id}/recommendations", response_model=RecommendationsOut, dependencies=read,
             tags=["recommendations"])
    async def user_recommendations(user_id: str, k: K = 10, filter_seen: bool = True, category: str | None = None) -> JSONResponse:
        engine, result = await service.recommend_user(user_id, k, filter_seen, category)
        return JSONResponse({"user_id": user_id, "source": result.source, "items": _items(result), "model_version": engine.version})

    @app.post("/v1/recommendations", response_model=RecommendationsOut, dependencies=read, tags=["recommendations"])
    async def session_recommendations(body: SessionIn) -> JSONResponse:
        """Recommendations for an anonymous session (item ids or event objects, oldest first)."""
        sequence = [item.model_dump() if hasattr(item, "model_dump") else item for item in body.sequence]
        engine, result = await service.recommend_session(sequence, body.k, body.filter_seen, body.category)
        return JSONResponse({"user_id": None, "source": result.source, "items": _items(result), "model_version": engine.version})

    @app.get("/v1/users/{user_id}/predictions", response_model=PredictionsOut, dependencies=personal, tags=["predictions"])
    async def predictions(user_id: str) -> dict[str, Any]:
        """Intent, propensity and churn probabilities from the bundle's prediction heads."""
        engine, answer = await service.predict(user_id)
        return {"user_id": user_id, "predictions": answer, "model_version": engine.version}

    @app.get("/v1/users/{user_id}/profile", response_model=ProfileOut, dependencies=personal, tags=["users"])
    async def user_profile(user_id: str) -> dict[str, Any]:
        """RFM, lifecycle stage, tastes, price level, rhythm, predictions, segment and the user vector."""
        engine, profile = await service.profile(user_id)
        return {"user_id": user_id, "profile": profile | {"user_id": user_id}, "model_version": engine.version}

    @app.get("/v1/users/{user_id}/explanations", response_model=ExplanationOut, dependencies=personal, tags=["users"])
    async def explanations(user_id: str, item: str | None = None, task: str | None = None, k: K = 5,
                           method: str = "banzhaf") -> dict[str, Any]:
        """Which past events pushed the top recommendation (or `item`'s score, or `task`'s probability), with signed weights."""
        engine, answer = await service.explain(user_id, item, task, k, method)
        return {"user_id": user_id, "explanation": answer | {"user_id": user_id}, "model_version": engine.version}

    @app.post("/v1/users/{user_id}/next-best-action", response_model=NextBestActionOut, dependencies=write,
              tags=["decisions"])
    async def next_best_action(user_id: str) -> dict[str, Any]:
        """Chooses the user's next action under the shop's rules, caps and budget; logged before it answers."""
        return await service.next_best_action(user_id)

    @app.post("/v1/decisions/{decision_id}/outcome", response_model=OutcomeOut, dependencies=write, tags=["decisions"])
    async def decision_outcome(decision_id: str, body: OutcomeIn) -> dict[str, Any]:
        """Stores what a decision earned; the policy learns from it at once."""
        return await service.record_outcome(decision_id, float(body.reward), body.clicked)

    @app.get("/v1/items/{item_id}/similar", response_model=SimilarOut, dependencies=read, tags=["items"])
    async def similar_items(item_id: str, k: K = 10) -> dict[str, Any]:
        """Items whose model vectors are closest (cosine) to this item's."""
        engine, (items, scores) = await service.similar(item_id, k)
        return {"item_id": item_id, "items": _items(Recommendation(items, scores, "model")), "model_version": engine.version}

    @app.get("/v1/search", response_model=SearchOut, dependencies=read, tags=["items"])
    async def search(q: Annotated[str, Query(min_length=1, max_length=500)], user_id: str | None = None, k: K = 10) -> dict[str, Any]:
        """Text search over the catalog's item embeddings; re-ranked by the user's taste when `user_id` is given."""
        engine, found = await service.search(q, user_id, k)
        columns = zip(found["item_ids"], found["scores"], found["text_scores"], found["personal_scores"])
        items = [{"item_id": i, "score": s, "rank": r, "text_score": t, "personal_score": p}
                 for r, (i, s, t, p) in enumerate(columns, 1)]
        return {"query": q, "user_id": user_id, "personalised": user_id is not None and any(found["personal_scores"]),
                "items": items, "model_version": engine.version}

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        return await service.health()

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    async def metrics() -> str:
        """Prometheus text format; open like /healthz (counts and latencies, no personal data)."""
        engine = service.engine
        return service.metrics.render({"shopformer_users_with_ingested_events": engine.states.n_ingested_users})

    @app.post("/v1/admin/purge", response_model=PurgeOut, dependencies=admin, tags=["service"])
    async def purge(body: PurgeIn | None = None) -> dict[str, Any]:
        """Deletes stored events older than `before` (default: the start of the retention window)."""
        before = body.before if body and body.before is not None else service.retention_cutoff()
        if before is None:
            raise HTTPException(422, "no retention window: give before (unix seconds) or start with --retention-days")
        return {"deleted_events": await service.purge(before), "before": before}

    @app.post("/v1/admin/reload", dependencies=admin, tags=["service"])
    async def reload(body: ReloadIn | None = None) -> dict[str, Any]:
        """Loads a bundle fully beside the current one, then swaps it in; requests never fail meanwhile."""
        started = time.perf_counter()
        engine: Engine = await service.reload(body.bundle if body else None)
        return {"model_version": engine.version, "bundle": str(engine.bundle_dir), "seconds": round(time.perf_counter() - started, 2)}
