"""Off-policy evaluation of policies on a logged bandit feedback: which policy would have earned most.

`value_policies` learns each bandit policy on the earlier part of a log (time order) and values it on
the later part, beside given action distributions (the logging policy, fixed rules), with a
cross-fitted reward model, SLOPE's estimator choice, DR and IPS intervals and effective sample sizes.
`decision_rounds` turns the service's decision log into such a log: the logged propensities are
what makes it possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shopformer.data.bandit import BanditLog
from shopformer.errors import DataError
from shopformer.evaluate.ope import ESTIMATORS, LoggedRounds, effective_sample_size, select_estimator, standard_error
from shopformer.policy.bandits import POLICIES
from shopformer.policy.log import Decision
from shopformer.policy.reward import cross_fitted_rewards
from shopformer.policy.state import STATE_FEATURES, context_vector

__all__ = ["decision_rounds", "value_policies", "value_of"]


def decision_rounds(decisions: Sequence[Decision], actions: Sequence[str], features: Sequence[str] = STATE_FEATURES) -> BanditLog:
    """The decisions with an outcome as one-slot bandit rounds over `actions` (one-hot action features),
    their contexts read from the state `features`."""
    kept = [d for d in decisions if d.reward is not None and d.action in actions and all(f in d.context for f in features)]
    if len(kept) < 20:
        raise DataError(f"off-policy evaluation needs at least 20 decisions with an outcome; the log has {len(kept)}")
    context = context_vector([d.context for d in kept], features)[:, 1:]  # the reward model adds its own intercept
    return BanditLog(context, np.array([list(actions).index(d.action) for d in kept]), np.zeros(len(kept), dtype=int),
                     np.array([d.reward for d in kept], dtype=float), np.array([d.propensity for d in kept]),
                     np.eye(len(actions)), name="decision log")


def value_of(log: BanditLog, dist: np.ndarray, rewards: np.ndarray) -> dict[str, Any]:
    """One policy's value on `log` by SLOPE's chosen estimator, with DR and IPS 95% intervals and the ESS."""
    data = LoggedRounds.from_log(log.rewards, log.actions, log.positions, log.propensities, dist, rewards)
    chosen = select_estimator(data)
    out: dict[str, Any] = {"selected": chosen, "selected_value": round(ESTIMATORS[chosen](data), 6),
                           "effective_sample_size": round(effective_sample_size(data.weights), 1)}
    # DR and IPS with their standard errors: DM's own error leaves out the reward model's, so it is not an interval.
    for estimator in ("dr", "ips"):
        value, error = ESTIMATORS[estimator](data), standard_error(data, estimator)
        out[estimator] = {"value": round(value, 6), "low": round(value - 1.96 * error, 6), "high": round(value + 1.96 * error, 6)}
    return out


def _with_intercept(context: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((len(context), 1)), context])


def value_policies(log: BanditLog, fixed: dict[str, np.ndarray] | None = None, *, train_share: float = 0.7,
                   seed: int = 0) -> dict[str, Any]:
    """Bandit policies learned on the first `train_share` of `log`, and the `fixed` (rounds, actions,
    slots) distributions over its later part, valued on that later part."""
    cut = int(train_share * log.n_rounds)
    train, test = log.rows(np.arange(cut)), log.rows(np.arange(cut, log.n_rounds))
    rewards = cross_fitted_rewards(test, seed=seed)
    dists = {name: dist[cut:] for name, dist in (fixed or {}).items()}
    contexts = {"train": _with_intercept(train.context), "test": _with_intercept(test.context)}
    for name, policy in POLICIES.items():
        learner = policy(test.n_actions, contexts["train"].shape[1], seed=seed).update(contexts["train"], train.actions, train.rewards)
        dists[name] = learner.action_dist(contexts["test"], test.len_list)
    values = {name: value_of(test, dist, rewards) for name, dist in dists.items()}
    # The highest estimate on the part it is measured on: an optimistic pick, reported as such.
    return {"train_rounds": cut, "test_rounds": test.n_rounds, "test_reward_sum": round(float(test.rewards.sum()), 4),
            "policies": values, "highest_dr_on_the_evaluation_part": max(values, key=lambda n: values[n]["dr"]["value"])}
