"""Uplift metrics: how much more the treated respond than the untreated among the top-scored users.

Users are ranked by predicted uplift, best first; after the top k of them (N_t treated with Y_t
responses, N_c controls with Y_c):

* Qini curve (Radcliffe, 2007):          Q(k) = Y_t - Y_c * N_t / N_c
* uplift curve (cumulative gain):         U(k) = (Y_t / N_t - Y_c / N_c) * k

Both start at (0, 0); a random ranking is the straight line to the last point. Curves are read at
each distinct score, so tied users enter together (scikit-uplift's convention; CausalML reads every
row, which agrees whenever scores are distinct, except before the first user of a group: a rate of
an empty group counts as 0 here, CausalML interpolates those first points from (0, 0)).

* `qini_area`, `uplift_area`: area between the curve and the random line (trapezoids over k).
* `qini_coefficient`: `qini_area` divided by the same area of the perfect ranking (every responding
  treated user first, every responding control last), as scikit-uplift's `qini_auc_score`.
* `uplift_at_k`: response rate of the treated minus that of the controls among the top share k.
"""

from __future__ import annotations

import numpy as np

__all__ = ["qini_area", "qini_coefficient", "qini_curve", "uplift_area", "uplift_at_k", "uplift_curve"]


def _cumulative(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    outcome, treated, score = (np.asarray(a, dtype=float) for a in (outcome, treated, score))
    if not (len(outcome) == len(treated) == len(score)) or not set(np.unique(treated)) <= {0.0, 1.0}:
        raise ValueError("outcome, treated (0/1) and score must be arrays of one length")
    order = np.argsort(-score, kind="stable")
    outcome, treated, score = outcome[order], treated[order], score[order]
    ends = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # last row of each distinct score
    n_t, n_c = np.cumsum(treated)[ends], np.cumsum(1 - treated)[ends]
    y_t, y_c = np.cumsum(outcome * treated)[ends], np.cumsum(outcome * (1 - treated))[ends]
    return ends + 1.0, n_t, n_c, y_t, y_c


def qini_curve(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(users so far, Q) from (0, 0) to everyone."""
    k, n_t, n_c, y_t, y_c = _cumulative(outcome, treated, score)
    q = y_t - np.divide(y_c * n_t, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    return np.r_[0.0, k], np.r_[0.0, q]


def uplift_curve(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(users so far, U) from (0, 0) to everyone."""
    k, n_t, n_c, y_t, y_c = _cumulative(outcome, treated, score)
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t > 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c > 0)
    return np.r_[0.0, k], np.r_[0.0, (rate_t - rate_c) * k]


def _area_over_random(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.trapezoid(y, x) - y[-1] * x[-1] / 2)


def qini_area(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    return _area_over_random(*qini_curve(outcome, treated, score))


def uplift_area(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    return _area_over_random(*uplift_curve(outcome, treated, score))


def qini_coefficient(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """`qini_area` of `score` over that of the perfect ranking (1: perfect, 0: random)."""
    outcome, treated = np.asarray(outcome, dtype=float), np.asarray(treated, dtype=float)
    # Perfect: responding treated first, then the non-responders, responding controls last.
    perfect = outcome * treated - outcome * (1 - treated)
    best = qini_area(outcome, treated, perfect)
    return qini_area(outcome, treated, score) / best if best else 0.0


def uplift_at_k(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray, k: float = 0.3) -> float:
    """Treated minus control response rate among the top share `k` of users by score."""
    outcome, treated, score = (np.asarray(a, dtype=float) for a in (outcome, treated, score))
    top = np.argsort(-score, kind="stable")[: max(1, int(k * len(score)))]  # int(k n) users, as scikit-uplift
    t, y = treated[top], outcome[top]
    if t.sum() == 0 or (1 - t).sum() == 0:
        raise ValueError(f"the top {k:.0%} holds no treated or no control user: uplift is undefined there")
    return float(y[t == 1].mean() - y[t == 0].mean())
