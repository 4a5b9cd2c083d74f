"""Off-policy evaluation of policies on a logged bandit feedback: which policy would have earned most.

`value_policies` learns each bandit policy on the earlier part of a log (time order) and values it on
the later part, beside given action distributions (the logging policy, fixed rules), with a
cross-fitted reward model, SLOPE's estimator choice, DR and IPS intervals and effective sample sizes.
`decision_rounds` turns the service's decision log into such a log: the logged propensities are
what makes it possible, and the logged allowed actions say what any other policy could have done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shopformer.data.bandit import BanditLog
from shopformer.errors import DataError
from shopformer.evaluate.ope import ESTIMATORS, LoggedRounds, effective_sample_size, select_estimator, standard_error
from shopformer.policy.bandits import POLICIES
from shopformer.policy.decide import choice_probabilities, make_bandit
from shopformer.policy.log import Decision
from shopformer.policy.reward import cross_fitted_rewards
from shopformer.policy.state import STATE_FEATURES, context_vector

__all__ = ["decision_rounds", "value_policies", "value_of"]


def decision_rounds(decisions: Sequence[Decision], actions: Sequence[str],
                    features: Sequence[str] = STATE_FEATURES) -> tuple[BanditLog, list[Decision]]:
    """The decisions with an outcome as one-slot bandit rounds over `actions` (one-hot action features),
    their contexts read from the state `features`, and the decisions kept (erased users' are not)."""
    kept = [d for d in decisions if d.reward is not None and d.action in actions and all(f in d.context for f in features)]
    if len(kept) < 20:
        raise DataError(f"off-policy evaluation needs at least 20 decisions with an outcome; the log has {len(kept)}")
    context = context_vector([d.context for d in kept], features)[:, 1:]  # the reward model adds its own intercept
    log = BanditLog(context, np.array([list(actions).index(d.action) for d in kept]), np.zeros(len(kept), dtype=int),
                    np.array([d.reward for d in kept], dtype=float), np.array([d.propensity for d in kept]),
                    np.eye(len(actions)), name="decision log")
    return log, kept


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


def _learned_dists(train: BanditLog, test: BanditLog, allowed: np.ndarray | None, costs: np.ndarray | None,
                   exploration: float, seed: int) -> dict[str, np.ndarray]:
    """Each bandit learned on `train`, as its (rounds, actions, slots) distribution over `test`. With
    `allowed` (a decision log), as the decision service runs it: its scale-free settings, scores minus
    costs, only the actions that were allowed in each round, the exploration floor."""
    contexts = {"train": _with_intercept(train.context), "test": _with_intercept(test.context)}
    dists = {}
    if allowed is None:  # a logged slate of several slots (the Open Bandit Dataset)
        for name, policy in POLICIES.items():
            learner = policy(test.n_actions, contexts["train"].shape[1], seed=seed).update(contexts["train"], train.actions, train.rewards)
            dists[name] = learner.action_dist(contexts["test"], test.len_list)
        return dists
    for name in ("linucb", "linear-thompson", "epsilon-greedy"):
        learner = make_bandit(name, test.n_actions, contexts["train"].shape[1], seed=seed)
        learner.update(contexts["train"], train.actions, train.rewards)
        probs = choice_probabilities(learner, contexts["test"], costs, allowed, exploration)
        dists[name] = probs[:, :, None]
    return dists


def value_policies(log: BanditLog, fixed: dict[str, np.ndarray] | None = None, *, train_share: float = 0.7, seed: int = 0,
                   allowed: np.ndarray | None = None, costs: np.ndarray | None = None,
                   exploration: float = 0.0) -> dict[str, Any]:
    """Bandit policies learned on the first `train_share` of `log`, and the `fixed` (rounds, actions,
    slots) distributions over its later part, valued on that later part. `allowed` (rounds, actions)
    and `costs` (actions) describe a decision log: each policy is then also given its expected cost."""
    cut = int(train_share * log.n_rounds)
    if min(cut, log.n_rounds - cut) < 10:
        raise DataError(f"off-policy evaluation needs at least 10 rounds to learn on and 10 to value on; "
                        f"{log.n_rounds} rounds split at {train_share:g} give {cut} and {log.n_rounds - cut}")
    train, test = log.rows(np.arange(cut)), log.rows(np.arange(cut, log.n_rounds))
    rewards = cross_fitted_rewards(test, seed=seed)
    dists = {name: dist[cut:] for name, dist in (fixed or {}).items()}
    dists |= _learned_dists(train, test, None if allowed is None else allowed[cut:], costs, exploration, seed)
    values = {name: value_of(test, dist, rewards) for name, dist in dists.items()}
    if costs is not None:
        for name, dist in dists.items():
            values[name]["expected_cost"] = round(float((dist[:, :, 0] * costs).sum(1).mean()), 6)
    # The highest estimate on the part it is measured on: an optimistic pick, reported as such.
    return {"train_rounds": cut, "test_rounds": test.n_rounds, "test_reward_sum": round(float(test.rewards.sum()), 4),
            "policies": values, "highest_dr_on_the_evaluation_part": max(values, key=lambda n: values[n]["dr"]["value"])}
