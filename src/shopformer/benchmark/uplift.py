"""Uplift on the Hillstrom e-mail experiment: which learner finds the customers an e-mail moves.

64,000 customers were randomly sent a men's e-mail, a women's e-mail or none. Customers are split at
random into training (50%), validation (20%) and test (30%); each learner trains on the training
part, the best is chosen by its validation Qini coefficient, and all are reported on the test part
with 95% bootstrap intervals over the test customers, with the scores held fixed. Random targeting scores 0 on every
area metric; `extra_per_10k` is the expected extra responses from e-mailing the top share of 10,000
customers instead of the same number at random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopformer.errors import DataError
from shopformer.evaluate.uplift import qini_area, qini_coefficient, uplift_area, uplift_at_k
from shopformer.policy.uplift import LEARNERS, fit_uplift
from shopformer.runtime import machine_info, versions

__all__ = ["TREATMENTS", "read_hillstrom", "run_hillstrom"]

TREATMENTS = {"any": ("Mens E-Mail", "Womens E-Mail"), "mens": ("Mens E-Mail",), "womens": ("Womens E-Mail",)}
OUTCOMES = ("visit", "conversion", "spend")
_NUMERIC = ("recency", "history", "mens", "womens", "newbie")
_CATEGORICAL = ("zip_code", "channel")


def read_hillstrom(path: str | Path, treatment: str = "any") -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """(features, treated 0/1, outcome columns) of the customers in `treatment`'s arms and the controls."""
    if treatment not in TREATMENTS:
        raise DataError(f"treatment must be one of {list(TREATMENTS)}, got {treatment!r}")
    try:
        frame = pl.read_csv(path, schema_overrides={"history": pl.Float64, "spend": pl.Float64})
    except (pl.exceptions.ComputeError, OSError) as error:
        raise DataError(f"{path}: not a readable Hillstrom CSV ({error})") from None
    missing = [c for c in (*_NUMERIC, *_CATEGORICAL, "segment", *OUTCOMES) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} of the Hillstrom layout")
    frame = frame.filter(pl.col("segment").is_in([*TREATMENTS[treatment], "No E-Mail"]))
    dummies = frame.select(_CATEGORICAL).to_dummies(drop_first=True)
    features = np.hstack([frame.select(_NUMERIC).to_numpy().astype(float), dummies.to_numpy().astype(float)])
    treated = frame["segment"].is_in(TREATMENTS[treatment]).to_numpy().astype(float)
    return features, treated, frame.select(OUTCOMES)


def _metrics(y: np.ndarray, t: np.ndarray, s: np.ndarray, k: float) -> dict[str, float]:
    return {"qini_coefficient": qini_coefficient(y, t, s), "qini_area_per_user": qini_area(y, t, s) / len(y) ** 2,
            "auuc_per_user": uplift_area(y, t, s) / len(y) ** 2, f"uplift@{k:.0%}": uplift_at_k(y, t, s, k)}


def _with_intervals(y: np.ndarray, t: np.ndarray, s: np.ndarray, k: float, runs: int, rng: np.random.Generator) -> dict:
    point = _metrics(y, t, s, k)
    draws = [_metrics(y[i], t[i], s[i], k) for i in (rng.integers(0, len(y), len(y)) for _ in range(runs))]
    return {name: {"value": round(value, 6), "low": round(float(np.percentile([d[name] for d in draws], 2.5)), 6),
                   "high": round(float(np.percentile([d[name] for d in draws], 97.5)), 6)} for name, value in point.items()}


def run_hillstrom(path: str | Path, *, treatment: str = "any", outcome: str = "visit", k: float = 0.3,
                  runs: int = 200, seed: int = 0) -> dict[str, Any]:
    """Every learner on one treatment/outcome pair of the Hillstrom experiment."""
    if outcome not in OUTCOMES:
        raise DataError(f"outcome must be one of {list(OUTCOMES)}, got {outcome!r}")
    x, t, outcomes = read_hillstrom(path, treatment)
    y = outcomes[outcome].to_numpy().astype(float)
    rng = np.random.default_rng(seed)
    part = rng.random(len(y))
    train, valid, test = part < 0.5, (part >= 0.5) & (part < 0.7), part >= 0.7
    results, validation = {}, {}
    for kind in LEARNERS:
        learner = fit_uplift(kind, x[train], t[train], y[train], seed=seed)
        validation[kind] = round(qini_coefficient(y[valid], t[valid], learner.predict(x[valid])), 6)
        scores = learner.predict(x[test])
        results[kind] = _with_intervals(y[test], t[test], scores, k, runs, rng)
        gain = results[kind][f"uplift@{k:.0%}"]["value"] - (y[test][t[test] == 1].mean() - y[test][t[test] == 0].mean())
        results[kind]["extra_per_10k"] = round(float(gain * k * 10_000), 1)
    best = max(validation, key=validation.get)
    return {"dataset": str(path), "treatment": treatment, "outcome": outcome, "test_users": int(test.sum()),
            "train_users": int(train.sum()), "validation_qini_coefficient": validation,
            "average_effect": round(float(y[t == 1].mean() - y[t == 0].mean()), 6),
            "learners": results, "best": best, "bootstrap_runs": runs,
            "definitions": "Qini Q(k) = Y_t - Y_c N_t / N_c and uplift U(k) = (Y_t/N_t - Y_c/N_c) k over the top k, read at"
                           " distinct scores; areas over the random line by trapezoids (divided by n^2 per user);"
                           " Qini coefficient = area / area of the perfect ranking (scikit-uplift's qini_auc_score)",
            "machine": machine_info(), "versions": versions()}
