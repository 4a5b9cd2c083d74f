"""Uplift learners: who responds because they were treated (sent an e-mail, given a coupon), not anyway.

Each learner estimates tau(x) = E[Y | x, treated] - E[Y | x, control] from a randomised experiment,
on LightGBM base models:

* S-learner: one model on (x, t); tau = f(x, 1) - f(x, 0).
* T-learner: one model per arm; tau = f_1(x) - f_0(x).
* X-learner (Kunzel et al., 2019): impute each user's effect with the other arm's model, regress
  those effects per arm, blend by the treatment probability e: tau = e tau_0 + (1 - e) tau_1.
* DR-learner (Kennedy, 2020): regress the doubly robust pseudo-outcome
  f_1 - f_0 + t (y - f_1) / e - (1 - t)(y - f_0) / (1 - e), arm models cross-fitted.

Binary outcomes use classifiers (probabilities), others regressors; `e` is the experiment's share of
treated users (known under randomisation).
"""

from __future__ import annotations

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.model_selection import KFold

__all__ = ["LEARNERS", "UpliftLearner", "fit_uplift"]

LEARNERS = ("s", "t", "x", "dr")
_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 100, "verbose": -1}


def _outcome_model(y: np.ndarray, seed: int):
    binary = set(np.unique(y)) <= {0.0, 1.0}
    return (LGBMClassifier if binary else LGBMRegressor)(random_state=seed, n_jobs=1, **_PARAMS), binary


def _fit_predict(x: np.ndarray, y: np.ndarray, seed: int):
    model, binary = _outcome_model(y, seed)
    model.fit(x, y)
    return (lambda z: model.predict_proba(z)[:, 1]) if binary else model.predict


def _regressor(x: np.ndarray, y: np.ndarray, seed: int):
    return LGBMRegressor(random_state=seed, n_jobs=1, **_PARAMS).fit(x, y).predict


class UpliftLearner:
    """A fitted learner: `predict(x)` is the estimated uplift of each row."""

    def __init__(self, kind: str, predict) -> None:
        self.kind, self._predict = kind, predict

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(np.asarray(x, dtype=float)))


def fit_uplift(kind: str, x: np.ndarray, treated: np.ndarray, y: np.ndarray, *, seed: int = 0) -> UpliftLearner:
    """Fits learner `kind` (one of LEARNERS) on features `x`, 0/1 `treated` and outcome `y`."""
    x, treated, y = np.asarray(x, dtype=float), np.asarray(treated, dtype=float), np.asarray(y, dtype=float)
    if kind not in LEARNERS:
        raise ValueError(f"unknown uplift learner {kind!r}; choose from {list(LEARNERS)}")
    if not 0 < treated.mean() < 1:
        raise ValueError("uplift needs both treated and control users")
    arm = treated == 1
    if kind == "s":
        f = _fit_predict(np.column_stack([x, treated]), y, seed)
        return UpliftLearner(kind, lambda z: f(np.column_stack([z, np.ones(len(z))])) - f(np.column_stack([z, np.zeros(len(z))])))
    f1, f0 = _fit_predict(x[arm], y[arm], seed), _fit_predict(x[~arm], y[~arm], seed)
    if kind == "t":
        return UpliftLearner(kind, lambda z: f1(z) - f0(z))
    e = treated.mean()
    if kind == "x":
        tau1 = _regressor(x[arm], y[arm] - f0(x[arm]), seed)
        tau0 = _regressor(x[~arm], f1(x[~arm]) - y[~arm], seed)
        return UpliftLearner(kind, lambda z: e * tau0(z) + (1 - e) * tau1(z))
    pseudo = np.zeros(len(y))
    for train, held in KFold(3, shuffle=True, random_state=seed).split(x):
        t_arm, c_arm = train[arm[train]], train[~arm[train]]
        m1, m0 = _fit_predict(x[t_arm], y[t_arm], seed)(x[held]), _fit_predict(x[c_arm], y[c_arm], seed)(x[held])
        t, target = treated[held], y[held]
        pseudo[held] = m1 - m0 + t * (target - m1) / e - (1 - t) * (target - m0) / (1 - e)
    return UpliftLearner(kind, _regressor(x, pseudo, seed))
