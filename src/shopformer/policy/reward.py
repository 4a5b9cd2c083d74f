"""Reward models for off-policy evaluation: q(context, action, slot), cross-fitted so that no round is
scored by a model that saw it (the rounds' own rewards would otherwise leak into DM and DR)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from shopformer.data.bandit import BanditLog

__all__ = ["REGULARISATION_GRID", "cross_fitted_rewards"]

#: Inverse L2 strengths tried for each slot's model, chosen by cross-validated log-loss on the log itself
#: (the smallest is close to the per-slot click rate alone: sparse clicks often support no more).
REGULARISATION_GRID = (1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0)


def _features(log: BanditLog, index: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return np.hstack([log.context[index], log.action_context[actions]])


def _slot_model(features: np.ndarray, rewards: np.ndarray, grid: Sequence[float], seed: int) -> LogisticRegression:
    search = GridSearchCV(LogisticRegression(max_iter=10_000), {"C": list(grid)}, scoring="neg_log_loss",
                          cv=StratifiedKFold(3, shuffle=True, random_state=seed))  # clicks in every fold
    return search.fit(features, rewards).best_estimator_


def cross_fitted_rewards(log: BanditLog, *, folds: int = 3, seed: int = 0,
                         grid: Sequence[float] = REGULARISATION_GRID) -> np.ndarray:
    """(rounds, actions, slots) predicted click probabilities: one logistic regression per slot on
    context + action features, its L2 strength picked by cross-validated log-loss on that slot's
    rounds, each round predicted by the fold model that did not train on it."""
    out = np.zeros((log.n_rounds, log.n_actions, log.len_list))
    strengths = {}
    for slot in range(log.len_list):
        rows = np.flatnonzero(log.positions == slot)
        if log.rewards[rows].sum() >= 3 * folds:  # enough clicks for every fold to hold some
            strengths[slot] = _slot_model(_features(log, rows, log.actions[rows]), log.rewards[rows], grid, seed).C
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(log.actions):
        for slot in range(log.len_list):
            rows = train[log.positions[train] == slot]
            rewards = log.rewards[rows]
            if slot not in strengths or len(np.unique(rewards)) < 2:  # too few clicks: the click rate is all there is
                out[held, :, slot] = rewards.mean() if len(rewards) else 0.0
                continue
            model = LogisticRegression(C=strengths[slot], max_iter=10_000).fit(_features(log, rows, log.actions[rows]), rewards)
            for action in range(log.n_actions):
                out[held, action, slot] = model.predict_proba(_features(log, held, np.full(len(held), action)))[:, 1]
    return out
