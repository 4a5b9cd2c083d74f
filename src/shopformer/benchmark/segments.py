"""Segments against RFM quantiles: how much of the next period's behaviour each segmentation explains.

The log is cut `horizon` before its end. The behaviour model and the propensity and churn heads
are fitted, and users are profiled and segmented, on the events before the cut only; the outcomes are each user's next period: did they
buy, did they come back at all (churn = no event). Both segmentations have the same number of
segments: Shopformer's (k-means over user vectors + RFM, k chosen on the data) and RFM quantiles
(users ranked by the sum of their R, F and M quintile scores, cut into k equal groups).

Two measures per outcome: the between-segment share of the outcome's variance (eta squared) and the
held-out log-loss of the per-segment rate (rates from a random half of the users, scored on the
other half), given as the share of the base rate's log-loss it removes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import adjusted_rand_score

from shopformer.data.prepared import prepare
from shopformer.data.schema import Dataset
from shopformer.errors import DataError
from shopformer.insight.profiles import build_profiles
from shopformer.insight.segments import fit_segments, segment_summary
from shopformer.predict.estimator import Shopformer
from shopformer.predict.insight import item_attributes, with_predictions
from shopformer.predict.tasks import TaskPredictor
from shopformer.runtime import machine_info, versions

__all__ = ["explained_behaviour", "rfm_quantile_segments", "run_segments"]

_DAY = 86_400


def rfm_quantile_segments(profiles: pl.DataFrame, k: int) -> np.ndarray:
    """Segments 0..k-1 by the sum of the R, F and M quintile scores (the classic RFM segmentation)."""
    total = profiles["rfm"].str.extract_all(r"\d").list.eval(pl.element().cast(pl.Int64)).list.sum().to_numpy()
    order = np.argsort(total + np.random.default_rng(0).random(len(total)) * 1e-3, kind="stable")
    labels = np.empty(len(total), dtype=np.int64)
    labels[order] = np.arange(len(total)) * k // len(total)
    return labels


def explained_behaviour(labels: np.ndarray, outcome: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Eta squared of `outcome` by `labels`, and the held-out log-loss gain of per-segment rates."""
    y = outcome.astype(np.float64)
    base = y.mean()
    total = ((y - base) ** 2).sum()
    groups = np.unique(labels)
    between = sum((labels == g).sum() * (y[labels == g].mean() - base) ** 2 for g in groups)
    half = np.random.default_rng(seed).random(len(y)) < 0.5
    fit_rate = y[half].mean()
    rates = {g: (y[half & (labels == g)].sum() + fit_rate) / ((half & (labels == g)).sum() + 1) for g in groups}
    held = ~half
    predicted = np.clip(np.array([rates[g] for g in labels[held]]), 1e-6, 1 - 1e-6)
    constant = np.clip(np.full(held.sum(), fit_rate), 1e-6, 1 - 1e-6)
    loss, loss_base = _log_loss(y[held], predicted), _log_loss(y[held], constant)
    return {"eta_squared": round(float(between / total), 4) if total else 0.0,
            "heldout_log_loss": round(loss, 5), "base_rate_log_loss": round(loss_base, 5),
            "log_loss_gain": round((loss_base - loss) / loss_base, 4) if loss_base else 0.0}


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def run_segments(dataset: Dataset, *, horizon_days: float | None = None, train_minutes: float = 2.0,
                 truth: pl.DataFrame | None = None, seed: int = 0) -> dict[str, Any]:
    """The comparison on one dataset (see the module docstring); `truth` (user_id, segment) adds the
    agreement with known segments, as the demo shop's generator has them."""
    events = dataset.events.frame
    end, start = int(events["timestamp"].max()), int(events["timestamp"].min())
    horizon = int((horizon_days or min(7, max(1, (end - start) / _DAY // 5))) * _DAY)
    cut = end - horizon
    past, future = events.filter(pl.col("timestamp") <= cut), events.filter(pl.col("timestamp") > cut)
    if past.is_empty() or future.is_empty():
        raise DataError(f"the log spans too little time for a {horizon / _DAY:g}-day next period", column="timestamp")
    started = time.perf_counter()
    history = Dataset(dataset.name, dataset.events.with_frame(past), dataset.catalog)
    model = Shopformer(train={"max_minutes": train_minutes, "seed": seed}).fit(prepare(history))
    heads = TaskPredictor.fit(history, ("propensity", "churn"))
    fit_seconds = time.perf_counter() - started
    catalog = item_attributes(model, dataset.catalog.frame if dataset.catalog is not None else None)
    profiles = with_predictions(build_profiles(past, catalog, now=cut), heads)
    users = profiles["user_id"].to_list()
    vectors = model.history_vectors(model.user_histories(users))
    started = time.perf_counter()
    segments = fit_segments(profiles, vectors)
    segment_seconds = time.perf_counter() - started
    ours, rfm = segments.assign(profiles, vectors), rfm_quantile_segments(profiles, segments.k)
    outcomes = _next_period(users, future)
    result = {"dataset": dataset.name, "users": len(users), "horizon_days": horizon / _DAY, "cut": cut,
              "segments": segment_summary(segments), "fit_seconds": round(fit_seconds, 1),
              "segment_seconds": round(segment_seconds, 2),
              "description": segments.describe(profiles, vectors).to_dicts(),
              "explained": {name: {"shopformer": explained_behaviour(ours, y, seed), "rfm_quantiles": explained_behaviour(rfm, y, seed)}
                            for name, y in outcomes.items()},
              "base_rates": {name: round(float(y.mean()), 4) for name, y in outcomes.items()},
              "machine": machine_info(), "versions": versions()}
    if truth is not None:
        known = pl.DataFrame({"user_id": users}).join(truth.select("user_id", "segment"), on="user_id", how="left")
        result["ari_with_true_segments"] = {
            "shopformer": round(float(adjusted_rand_score(known["segment"].fill_null("?"), ours)), 4),
            "rfm_quantiles": round(float(adjusted_rand_score(known["segment"].fill_null("?"), rfm)), 4)}
    return result


def _next_period(users: list[str], future: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per user: bought in the next period, and churned (no event at all in it)."""
    active = set(future["user_id"].unique().to_list())
    buyers = set(future.filter(pl.col("event_type") == "purchase")["user_id"].unique().to_list())
    return {"purchase": np.array([u in buyers for u in users]), "churn": np.array([u not in active for u in users])}
