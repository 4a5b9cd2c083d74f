"""Off-policy evaluation: the value a new policy would have earned, estimated from another policy's log.

Notation (per logged round i, at its slot k_i): r_i the reward, a_i the logged action, p_i the logging
policy's propensity of a_i, pi(a | i) the evaluation policy's probability at that slot, w_i =
pi(a_i | i) / p_i the importance weight, q(i, a) a reward model's prediction and
q_pi(i) = sum_a pi(a | i) q(i, a).

* DM        mean q_pi(i)
* IPS       mean w_i r_i
* SNIPS     sum w_i r_i / sum w_i
* DR        mean q_pi(i) + w_i (r_i - q(i, a_i))
* SNDR      mean q_pi(i) + w_i (r_i - q(i, a_i)) / mean(w)
* Switch-DR mean q_pi(i) + 1[w_i <= tau] w_i (r_i - q(i, a_i))
* DRos      mean q_pi(i) + w'_i (r_i - q(i, a_i)), w' = lam w / (w^2 + lam) (optimistic shrinkage)

The definitions of Dudik et al. (2011), Wang et al. (2017) and Su et al. (2020). Intervals: a
standard error from the per-round terms, or resampling rounds (bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ESTIMATORS", "LADDER", "TERMS", "LoggedRounds", "bootstrap_interval", "effective_sample_size", "estimate_all",
           "select_estimator", "standard_error"]


@dataclass(frozen=True)
class LoggedRounds:
    """What every estimator reads: rewards, weights, q(i, a_i) and q_pi(i), one entry per round."""

    rewards: np.ndarray
    weights: np.ndarray
    q_logged: np.ndarray
    q_policy: np.ndarray

    @classmethod
    def from_log(cls, rewards: np.ndarray, actions: np.ndarray, positions: np.ndarray, propensities: np.ndarray,
                 action_dist: np.ndarray, estimated_rewards: np.ndarray | None = None) -> LoggedRounds:
        """`action_dist` and `estimated_rewards`: (rounds, actions, slots), the policy's probabilities and
        the reward model's predictions; without a reward model, q = 0 (DM and DR then mean nothing)."""
        rounds = np.arange(len(actions))
        policy = action_dist[rounds, :, positions]
        if np.any(propensities <= 0):
            raise ValueError("propensities must be positive: a logged action the logging policy could not take")
        q = np.zeros_like(policy) if estimated_rewards is None else estimated_rewards[rounds, :, positions]
        return cls(np.asarray(rewards, float), policy[rounds, actions] / propensities, q[rounds, actions], (policy * q).sum(1))

    def take(self, index: np.ndarray) -> LoggedRounds:
        return LoggedRounds(self.rewards[index], self.weights[index], self.q_logged[index], self.q_policy[index])


# Each estimator gives per-round terms whose mean is its estimate; for the self-normalised ones the
# terms are their influence functions (delta method), so the same std / sqrt(n) is their standard error.

def _dm(d: LoggedRounds) -> np.ndarray:
    return d.q_policy


def _ips(d: LoggedRounds) -> np.ndarray:
    return d.weights * d.rewards


def _self_normalised(d: LoggedRounds, numerator: np.ndarray, offset: np.ndarray) -> np.ndarray:
    mean_weight = max(float(d.weights.mean()), 1e-12)
    value = float(numerator.mean()) / mean_weight
    return offset + value + (numerator - value * d.weights) / mean_weight


def _snips(d: LoggedRounds) -> np.ndarray:
    return _self_normalised(d, d.weights * d.rewards, np.zeros_like(d.rewards))


def _dr(d: LoggedRounds) -> np.ndarray:
    return d.q_policy + d.weights * (d.rewards - d.q_logged)


def _sndr(d: LoggedRounds) -> np.ndarray:
    return _self_normalised(d, d.weights * (d.rewards - d.q_logged), d.q_policy - d.q_policy.mean()) + d.q_policy.mean()


def switch_dr(tau: float) -> Callable[[LoggedRounds], np.ndarray]:
    def terms(d: LoggedRounds) -> np.ndarray:
        return d.q_policy + np.where(d.weights <= tau, d.weights, 0.0) * (d.rewards - d.q_logged)
    return terms


def dr_shrinkage(lam: float) -> Callable[[LoggedRounds], np.ndarray]:
    def terms(d: LoggedRounds) -> np.ndarray:
        return d.q_policy + lam * d.weights / (d.weights**2 + lam) * (d.rewards - d.q_logged)
    return terms


#: Per-round terms of every estimator by name (Switch-DR's tau and DRos's lambda: 5, moderate clipping
#: of this log's weights, which rarely exceed 10).
TERMS: dict[str, Callable[[LoggedRounds], np.ndarray]] = {
    "dm": _dm, "ips": _ips, "snips": _snips, "dr": _dr, "sndr": _sndr,
    "switch-dr": switch_dr(tau=5.0), "dr-os": dr_shrinkage(lam=5.0),
}


def _estimator(terms: Callable[[LoggedRounds], np.ndarray]) -> Callable[[LoggedRounds], float]:
    return lambda d: float(terms(d).mean())


#: Every estimator by name, as a function of the logged rounds to a value.
ESTIMATORS: dict[str, Callable[[LoggedRounds], float]] = {name: _estimator(t) for name, t in TERMS.items()}

#: The candidates `select_estimator` compares, from unbiased (IPS) to as-good-as-its-model (DM).
LADDER = ("ips", "dr", "switch-dr", "dr-os", "dm")


def standard_error(data: LoggedRounds, name: str) -> float:
    terms = TERMS[name](data)
    return float(terms.std(ddof=1) / np.sqrt(len(terms)))


def select_estimator(data: LoggedRounds, ladder: tuple[str, ...] = LADDER, z: float = 1.96) -> str:
    """SLOPE (Su et al., 2020, in Open Bandit Pipeline's form): order the candidates from the widest
    interval to the narrowest, and keep going while each estimate stays within cnf_new + (sqrt(6) - 1)
    cnf_old of every one before it (cnf = z * standard error); the last one kept is chosen. Only the
    log is used, never a policy's true value."""
    candidates = sorted(((standard_error(data, n), n) for n in ladder), reverse=True)
    kept: list[tuple[float, float]] = []
    chosen = candidates[0][1]
    for error, name in candidates:
        value, width = ESTIMATORS[name](data), z * error
        if any(abs(value - v) > width + (6**0.5 - 1) * w for v, w in kept):
            break
        kept.append((value, width))
        chosen = name
    return chosen


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: how many rounds of on-policy data the weighted log is worth."""
    return float(weights.sum() ** 2 / max((weights**2).sum(), 1e-12))


def bootstrap_interval(data: LoggedRounds, estimator: Callable[[LoggedRounds], float], *, runs: int = 200,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `estimator` over `runs` resamples of the rounds."""
    rng = np.random.default_rng(seed)
    n = len(data.rewards)
    values = [estimator(data.take(rng.integers(0, n, n))) for _ in range(runs)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def estimate_all(data: LoggedRounds, *, interval_runs: int = 0, seed: int = 0) -> dict[str, dict[str, float]]:
    """Every estimator's value and standard error (and, with `interval_runs`, its bootstrap interval)."""
    out = {}
    for name, estimator in ESTIMATORS.items():
        out[name] = {"value": estimator(data), "standard_error": standard_error(data, name)}
        if interval_runs:
            out[name]["low"], out[name]["high"] = bootstrap_interval(data, estimator, runs=interval_runs, seed=seed)
    return out
