"""Explanation benchmark: how faithful and how fast the attribution methods are.

Faithfulness (deletion and insertion curves, Petsiuk et al. 2018): for each sampled user, the
target is explained (next item: the top recommendation, seen items filtered; task: the task model's
probability), then the events are ordered five ways: by occlusion, Banzhaf and integrated-gradients
weight (most positive first), at random and most recent first. Deletion removes the first k events
of an ordering, insertion keeps only them; the target is re-scored through the full model (count
prior, calibration and all). Scores are normalised by the full history's: the probability ratio
p_k / p_full (for items exp(Δ log p)), capped at 1. A curve's area is the mean over k = 1..5; a
faithful method has a low deletion area and a high insertion area. Removing all events of a short history leaves
the placeholder history every method shares.

Latency: wall time of one `predict.explain.explain` call per user, as the service would make it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from shopformer.data.schema import Catalog
from shopformer.insight.attribution import (
    Attribution,
    MaskScorer,
    banzhaf,
    occlusion,
    random_order,
    recency_order,
    weight_order,
)
from shopformer.insight.explain import next_item_gradients, next_item_scorer
from shopformer.predict.estimator import Shopformer
from shopformer.predict.explain import MAX_EVENTS, TaskScorer, explain, task_events, task_gradients
from shopformer.predict.tasks import TaskPredictor
from shopformer.runtime import machine_info, versions

__all__ = ["KS", "METHODS", "ORDERINGS", "PROTOCOL", "benchmark_document", "explanation_latency", "next_item_faithfulness",
           "sample_users", "summarise", "task_faithfulness", "user_curves", "users_with_task_events", "with_machine"]

KS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: The attribution methods, then the baselines.
METHODS: tuple[str, ...] = ("occlusion", "banzhaf", "integrated_gradients")
ORDERINGS: tuple[str, ...] = (*METHODS, "random", "recency")
PROTOCOL = {
    "target": "next item: the user's top recommendation (seen items filtered); task: the task model's probability",
    "history": f"the user's last {MAX_EVENTS} events as the model stores them; users with two or more events",
    "orderings": "occlusion (leave-one-out), Banzhaf (64 random halves, all subsets of histories of up to 6 events) and"
                 " integrated-gradients weights, most positive first; random; most recent first",
    "deletion": "target score after removing the first k events of an ordering, k = 1..5",
    "insertion": "target score with only the first k events of an ordering kept, k = 1..5",
    "normalisation": "min(p_k / p_full, 1) (items: exp of the log-probability difference); area = mean over k;"
                     " area_median: the median user's area",
    "integrated_gradients": "zero item and event-type embeddings as baseline, 32 midpoint steps; the count prior "
                            "held at the full history's terms; tasks: the task model's Transformer head",
    "latency_note": "2 shared CPU cores (other work running alongside): p95 includes that contention",
    "latency": "one explain() call (target choice, attribution, event details, sentence), one torch thread;"
               " each user's call timed 3 times, the median kept; p50 / p95 over users",
}


def _curve_masks(orders: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Per ordering: deletion rows for k in KS, then insertion rows for k in KS."""
    rows = []
    for order in orders.values():
        for keep in (False, True):
            for k in KS:
                mask = np.full(n, not keep)
                mask[order[: min(k, n)]] = keep
                rows.append(mask)
    return np.stack(rows)


def user_curves(scorer: MaskScorer, attributions: dict[str, Attribution], n: int, rng: np.random.Generator,
                to_ratio: Callable[[np.ndarray, float], np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Normalised deletion and insertion curves of one user for every ordering, in one scorer call."""
    orders = {name: weight_order(a.weights) for name, a in attributions.items()}
    orders |= {"random": random_order(n, rng), "recency": recency_order(n)}
    full = attributions["occlusion"].score
    ratios = to_ratio(scorer(_curve_masks(orders, n)), full).reshape(len(orders), 2, len(KS))
    return {name: {"deletion": ratios[i, 0], "insertion": ratios[i, 1]} for i, name in enumerate(orders)}


def summarise(curves: Sequence[dict[str, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """Mean curves and areas per ordering, areas relative to random and recency, and per-user wins."""
    out: dict[str, Any] = {"users": len(curves)}
    areas = {name: {kind: np.array([c[name][kind].mean() for c in curves]) for kind in ("deletion", "insertion")}
             for name in curves[0]}
    for name, by_kind in areas.items():
        row: dict[str, Any] = {}
        for kind, values in by_kind.items():
            mean_curve = np.mean([c[name][kind] for c in curves], axis=0)
            row[kind] = {"curve": [round(float(v), 4) for v in mean_curve], "area": round(float(values.mean()), 4),
                         "area_median": round(float(np.median(values)), 4)}
        out[name] = row
    for name in METHODS:
        deletion = areas[name]["deletion"]
        out[name]["deletion"] |= {
            "vs_random": round(float(deletion.mean() / areas["random"]["deletion"].mean() - 1), 4),
            "vs_recency": round(float(deletion.mean() / areas["recency"]["deletion"].mean() - 1), 4),
            "users_below_random": round(float((deletion < areas["random"]["deletion"]).mean()), 4)}
    best = min(METHODS, key=lambda n: out[n]["deletion"]["area"])
    out["more_faithful"] = best
    return out


# Capped at 1: a removal that happens to raise the target (more often under random orders) would
# otherwise dominate a mean of ratios, some of which run into the hundreds on long histories.
def _item_ratio(scores: np.ndarray, full: float) -> np.ndarray:
    return np.minimum(np.exp(np.asarray(scores) - full), 1.0)


def _probability_ratio(scores: np.ndarray, full: float) -> np.ndarray:
    return np.minimum(np.asarray(scores) / max(full, 1e-12), 1.0)


def next_item_faithfulness(estimator: Shopformer, users: Sequence[str], *, steps: int = 32, seed: int = 0) -> dict[str, Any]:
    """Deletion and insertion curves of the top recommendation of each of `users` (two or more events)."""
    rng = np.random.default_rng(seed)
    curves = []
    for user in users:
        history = estimator.user_histories([user]).keep_last(MAX_EVENTS)
        n = int(history.lengths[0])
        if n < 2:
            continue
        scores, _ = estimator.scores_with_fallback(history)
        scores[0, history.items] = -np.inf
        target = int(np.argmax(scores[0]))
        scorer = next_item_scorer(estimator, history, target)
        attributions = {"occlusion": occlusion(scorer, n), "banzhaf": banzhaf(scorer, n),
                        "integrated_gradients": next_item_gradients(estimator, history, target, steps)}
        curves.append(user_curves(scorer, attributions, n, rng, _item_ratio))
    return summarise(curves)


def task_faithfulness(estimator: Shopformer, predictor: TaskPredictor, task: str, users: Sequence[str], *,
                      steps: int = 32, seed: int = 0) -> dict[str, Any]:
    """Deletion and insertion curves of `task`'s probability for each of `users` (two or more events)."""
    rng = np.random.default_rng(seed)
    curves = []
    now = predictor.now + 1
    for user in users:
        ordered = task_events(predictor, user, None)
        scorer = TaskScorer(predictor, ordered, task, now)
        n = scorer.window.height
        if n < 2:
            continue
        attributions = {"occlusion": occlusion(scorer, n), "banzhaf": banzhaf(scorer, n),
                        "integrated_gradients": task_gradients(predictor, ordered, scorer, now, steps)}
        curves.append(user_curves(scorer, attributions, n, rng, _probability_ratio))
    return summarise(curves)


def explanation_latency(estimator: Shopformer, users: Sequence[str], method: str, repeats: int = 3,
                        **options: Any) -> dict[str, float]:
    """p50 / p95 / mean milliseconds of one `explain` call per user, after one warm-up call.

    Each user's call is timed `repeats` times and the median kept: on a machine shared with other
    work a single timing measures their load as much as the call.
    """
    explain(estimator, users[0], method=method, **options)
    per_user = []
    for user in users:
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            explain(estimator, user, method=method, **options)
            seconds.append(time.perf_counter() - started)
        per_user.append(float(np.median(seconds)))
    ms = np.asarray(per_user) * 1000
    return {"calls": len(ms), "repeats": repeats, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "mean_ms": round(float(ms.mean()), 2)}


def sample_users(estimator: Shopformer, n: int, seed: int = 0, min_events: int = 2) -> list[str]:
    """`n` users drawn at random among those with `min_events` or more stored events."""
    users = np.asarray(estimator.known_users())
    lengths = estimator.user_histories(users.tolist()).lengths
    eligible = users[lengths >= min_events]
    rng = np.random.default_rng(seed)
    return rng.choice(eligible, size=min(n, len(eligible)), replace=False).tolist()


def benchmark_document(name: str, estimator: Shopformer, users: Sequence[str], *, catalog: Catalog | None = None,
                       predictor: TaskPredictor | None = None, tasks: Sequence[str] = (),
                       task_users: Sequence[str] = (), latency_users: int = 100, steps: int = 32,
                       seed: int = 0) -> dict[str, Any]:
    """Faithfulness of every ordering and latency of both methods on one dataset."""
    started = time.perf_counter()
    result: dict[str, Any] = {"dataset": name, "users": len(users),
                              "next_item": next_item_faithfulness(estimator, users, steps=steps, seed=seed)}
    timing = list(users[:latency_users])
    result["latency"] = {"next_item": {m: explanation_latency(estimator, timing, m, catalog=catalog) for m in METHODS}}
    for task in tasks:
        if predictor is None:
            raise ValueError("task faithfulness needs the task models: pass predictor=")
        result[task] = task_faithfulness(estimator, predictor, task, task_users, steps=steps, seed=seed)
        result["latency"][task] = {m: explanation_latency(estimator, list(task_users[:latency_users]), m,
                                                          task=task, tasks=predictor, catalog=catalog)
                                   for m in METHODS}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def with_machine(datasets: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: protocol, machine, versions and each dataset's results."""
    return {"protocol": PROTOCOL, "machine": machine_info(), "versions": versions(), "datasets": datasets}


def users_with_task_events(predictor: TaskPredictor, n: int, seed: int = 0, min_events: int = 2) -> list[str]:
    """`n` users of the task log with `min_events` or more events, drawn at random."""
    counts = predictor.context.events.group_by("user_id").len().filter(pl.col("len") >= min_events).sort("user_id")
    rng = np.random.default_rng(seed)
    ids = counts["user_id"].to_numpy()
    return rng.choice(ids, size=min(n, len(ids)), replace=False).tolist()

