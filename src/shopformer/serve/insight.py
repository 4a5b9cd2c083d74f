"""Profiles and explanations in the service: one user's, from the bundle's log and the events stored since.

The bundle's insight (its event log, catalog attributes, segments and the population's profiles
that RFM quintiles rank within) is loaded once per engine, on the first profile asked for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from shopformer.errors import UnknownUserError
from shopformer.predict.explain import explain
from shopformer.predict.insight import BundleInsight, profile_users

__all__ = ["EngineInsight", "explanation", "user_events"]

_EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "event_type"]


def user_events(logged: pl.DataFrame | None, stored: pl.DataFrame, user_id: str, purpose: str) -> pl.DataFrame:
    """The user's events in the bundle's log `logged` (None for a forgotten user) followed by the
    stored ones, in time order; a user with neither is an `UnknownUserError` (404)."""
    events = stored.select(_EVENT_COLUMNS)
    if logged is not None:
        own = logged.filter(pl.col("user_id") == user_id).select(_EVENT_COLUMNS)
        events = pl.concat([own, events]).sort("timestamp", maintain_order=True)
    if events.is_empty():
        raise UnknownUserError(f"user {user_id!r} has no events {purpose} (neither in the bundle nor stored)")
    return events


class EngineInsight:
    """Profiles against one loaded engine's model and bundle."""

    def __init__(self, model, bundle_dir) -> None:
        self.insight = BundleInsight.open(bundle_dir, model=model)
        # Computed here, in the model thread, not in the first request.
        _ = self.insight.population, self.insight.anomalies

    def user_events(self, stored: pl.DataFrame, user_id: str, with_bundle_history: bool) -> pl.DataFrame:
        """The user's events in the bundle's log (unless forgotten) followed by the stored ones."""
        return user_events(self.insight.events if with_bundle_history else None, stored, user_id, "to profile")

    def profile(self, events: pl.DataFrame, user_id: str, predictions: dict[str, Any] | None) -> dict[str, Any]:
        """The profile as JSON: the base profile, segment and vector, with the live `predictions`."""
        insight = self.insight
        now = max(int(insight.events["timestamp"].max()), int(events["timestamp"].max()))
        live = {f"{task}_probability": [float(p)] for task, p in (predictions or {}).items() if isinstance(p, float | int)}
        table = profile_users(insight.model, [user_id], events, insight.catalog, segments=insight.segments,
                              population=insight.population, now=now, anomalies=insight.anomalies,
                              predictions=pl.DataFrame({"user_id": [user_id], **live}) if live else None)
        row = {name: _plain(value) for name, value in table.row(0, named=True).items()}
        row["predictions"] = predictions or {}
        return row


def explanation(engine, user_id: str, stored: pl.DataFrame, with_bundle_history: bool, *, item: str | None,
                task: str | None, k: int, method: str, now: int) -> dict[str, Any]:
    """Why the user's recommendation (or `item`'s score) or a task prediction is what it is, from the
    user's live history: the state recommendations read, or the events the prediction heads read."""
    if task is None:
        history = engine.states.sequences([engine.states.history(user_id)])
        return explain(engine.model, user_id, item=item, k=k, method=method, history=history)
    predictor = engine.task_predictor()
    events = user_events(predictor.context.events if with_bundle_history else None, stored, user_id, "to explain")
    return explain(engine.model, user_id, item=item, task=task, k=k, method=method, tasks=predictor, events=events, now=now)


def _plain(value: Any) -> Any:
    """JSON-safe values: NaN becomes null, numpy scalars plain numbers."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
