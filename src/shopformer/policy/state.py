"""A user's state as the next-best-action layer reads it: a few numbers from the recent events.

The same features are computed from the service's in-memory history and from a log (the
simulator), so a policy learned on one reads the other. The service reads the recent events it keeps
for the user (the model's last `max_len`, 50 by default: bundle history plus ingested events), so
counts there stop at that window; the simulator reads everything before the visit. With `use_predictions` in the actions
file, the task models' probabilities join them (`PREDICTION_FEATURES`). `context_vector` is what
the bandits see: an intercept, counts on a log scale, recencies in log-hours, probabilities as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NEVER_HOURS", "PREDICTION_FEATURES", "STATE_FEATURES", "context_vector", "state_features"]

STATE_FEATURES: tuple[str, ...] = (
    "events", "purchases", "carts_open", "events_7d",
    "hours_since_last_event", "hours_since_last_cart", "hours_since_last_purchase",
)
#: The task models' probabilities a state can carry (`GET /v1/users/{id}/predictions`).
PREDICTION_FEATURES: tuple[str, ...] = ("intent", "propensity", "churn")
#: Hours standing in for "never" (ten years), so rules such as `hours_since_last_cart <= 48` read naturally.
NEVER_HOURS = 87_600.0
_CART, _PURCHASE = "cart", "purchase"


def _hours_since(times: np.ndarray, now: float) -> float:
    return float(np.clip((now - times.max()) / 3600.0, 0.0, NEVER_HOURS)) if len(times) else NEVER_HOURS


def state_features(event_types: Sequence[str | None], timestamps: Sequence[int], now: float) -> dict[str, float]:
    """The state of one user from their events (oldest first; unix seconds) as of `now`.

    `carts_open` counts cart events after the last purchase: items put in the cart and not bought since.
    """
    kinds = np.asarray([t or "" for t in event_types], dtype=object)
    times = np.asarray(timestamps, dtype=np.float64)
    if len(kinds) != len(times):
        raise ValueError(f"{len(kinds)} event types for {len(times)} timestamps")
    carts, purchases = kinds == _CART, kinds == _PURCHASE
    last_purchase = int(np.flatnonzero(purchases).max()) if purchases.any() else -1
    return {
        "events": float(len(kinds)),
        "purchases": float(purchases.sum()),
        "carts_open": float(carts[last_purchase + 1:].sum()),
        "events_7d": float((times >= now - 7 * 86_400).sum()),
        "hours_since_last_event": _hours_since(times, now),
        "hours_since_last_cart": _hours_since(times[carts], now),
        "hours_since_last_purchase": _hours_since(times[purchases], now),
    }


def context_vector(states: dict[str, float] | Sequence[dict[str, float]],
                   features: Sequence[str] = STATE_FEATURES) -> np.ndarray:
    """(rows, 1 + features): an intercept, log1p of every count and recency in hours, probabilities as they are."""
    rows = [states] if isinstance(states, dict) else list(states)
    values = np.array([[row[name] for name in features] for row in rows], dtype=np.float64).reshape(len(rows), len(features))
    logged = np.array([name in STATE_FEATURES for name in features])
    values[:, logged] = np.log1p(np.maximum(values[:, logged], 0.0))
    return np.hstack([np.ones((len(rows), 1)), values])
