"""Reward models for off-policy evaluation: q(context, action, slot), cross-fitted so that no round is
scored by a model that saw it, nor tuned on it (the rounds' own rewards would otherwise leak into DM
and DR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold

from shopformer.data.bandit import BanditLog

__all__ = ["REGULARISATION_GRID", "cross_fitted_rewards"]

#: Inverse L2 strengths tried for each slot's model, chosen by cross-validated log-loss (clicks) or squared
#: error on the log itself (the smallest is close to the per-slot click rate alone: sparse clicks often
#: support no more).
REGULARISATION_GRID = (1e-4, 1e-2, 1.0, 100.0)


def _features(log: BanditLog, index: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return np.hstack([log.context[index], log.action_context[actions]])


def _slot_model(features: np.ndarray, rewards: np.ndarray, groups: np.ndarray, grid: Sequence[float], folds: int,
                seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A slot's model at the strength with the best log-loss (clicks) or squared error (any other
    reward) over `folds` group folds of its rounds, as features -> expected reward."""
    splits = list(GroupKFold(folds, shuffle=True, random_state=seed).split(features, rewards, groups))
    if not set(np.unique(rewards)) <= {0.0, 1.0}:
        # Ridge's alpha is an L2 strength, the inverse of logistic regression's C.
        search = GridSearchCV(Ridge(), {"alpha": [1 / c for c in grid]}, scoring="neg_mean_squared_error", cv=splits)
        return search.fit(features, rewards).best_estimator_.predict
    if any(rewards[train].sum() == 0 or rewards[test].sum() == 0 for train, test in splits):
        model = LogisticRegression(C=min(grid), max_iter=10_000).fit(features, rewards)  # too few clicks to compare
    else:
        search = GridSearchCV(LogisticRegression(max_iter=10_000), {"C": list(grid)}, scoring="neg_log_loss", cv=splits)
        model = search.fit(features, rewards).best_estimator_
    return lambda x: model.predict_proba(x)[:, 1]


def cross_fitted_rewards(log: BanditLog, *, folds: int = 3, seed: int = 0, groups: np.ndarray | None = None,
                         grid: Sequence[float] = REGULARISATION_GRID) -> np.ndarray:
    """(rounds, actions, slots) expected rewards: one logistic (clicks) or ridge (any other reward)
    regression per slot on context + action features, each round predicted by a model fitted without
    it, whose L2 strength was chosen by cross-validated log-loss (squared error) inside that model's
    own training rounds. `groups` (e.g. the source row of each bootstrap copy) keeps copies of one
    round on one side of every split."""
    groups = np.arange(log.n_rounds) if groups is None else np.asarray(groups)
    out = np.zeros((log.n_rounds, log.n_actions, log.len_list))
    for train, held in GroupKFold(folds, shuffle=True, random_state=seed).split(log.actions, groups=groups):
        for slot in range(log.len_list):
            rows = train[log.positions[train] == slot]
            rewards = log.rewards[rows]
            if len(np.unique(rewards)) < 2:  # no click at all: the click rate is all there is
                out[held, :, slot] = rewards.mean() if len(rewards) else 0.0
                continue
            model = _slot_model(_features(log, rows, log.actions[rows]), rewards, groups[rows], grid, folds, seed)
            for action in range(log.n_actions):
                out[held, action, slot] = model(_features(log, held, np.full(len(held), action)))
    return out
