"""Off-policy evaluation on the Open Bandit Dataset, in Open Bandit Pipeline's own protocol.

The same traffic was served by a uniform-random policy and by Bernoulli Thompson sampling (BTS). The
BTS policy's click rate is estimated from the random log only, and compared with its on-policy value
(the mean click of its own log): relative error |V_hat - V| / V, over bootstrap resamples of the
random log, each with its own cross-fitted reward model.

BTS's action distribution per slot is read from its log: the share of its impressions at that slot
that show the item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopformer.data.bandit import BanditLog, read_open_bandit
from shopformer.errors import DataError
from shopformer.evaluate.ope import ESTIMATORS, LoggedRounds, effective_sample_size, select_estimator
from shopformer.policy.offline import value_policies
from shopformer.policy.reward import cross_fitted_rewards
from shopformer.runtime import machine_info, versions

__all__ = ["CAMPAIGNS", "compare_policies", "logged_action_dist", "run_obd_protocol"]

CAMPAIGNS = ("all", "men", "women")

PROTOCOL = {
    "estimand": "click rate of the Bernoulli-TS policy, estimated from the uniform-random log",
    "truth": "on-policy value: mean click of the Bernoulli-TS log of the same campaign",
    "error": "relative estimation error |estimate - truth| / truth, mean and std over bootstrap resamples",
    "reward_model": "logistic regression per slot on user features + item features, 3-fold cross-fitted",
    "evaluation_policy": "Bernoulli-TS per-slot action shares of its own log",
}


def logged_action_dist(log: BanditLog) -> np.ndarray:
    """(actions, slots) probabilities of a context-free policy: how often its log shows each item at
    each slot. Its propensities change as it learns; the shares of its own log are the time average
    that its on-policy value (the log's mean click) averages over too."""
    counts = np.zeros((log.n_actions, log.len_list))
    np.add.at(counts, (log.actions, log.positions), 1.0)
    totals = counts.sum(0, keepdims=True)
    if np.any(totals <= 0):
        raise DataError(f"{log.name}: a slot that the log never filled")
    return counts / totals


def _campaign(root: Path, campaign: str, runs: int, seed: int) -> dict[str, Any]:
    random_log, bts_log = read_open_bandit(root / "random" / campaign), read_open_bandit(root / "bts" / campaign)
    truth = float(bts_log.rewards.mean())
    dist = logged_action_dist(bts_log)
    rng = np.random.default_rng(seed)
    errors: dict[str, list[float]] = {name: [] for name in (*ESTIMATORS, "selected")}
    ess, chosen = [], []
    for run in range(runs):
        source = rng.integers(0, random_log.n_rounds, random_log.n_rounds)
        sample = random_log.rows(source)
        # Copies of one round stay on one side of every fold: a model must not score its own round.
        rewards = cross_fitted_rewards(sample, seed=seed + run, groups=source)
        action_dist = np.broadcast_to(dist, (sample.n_rounds, *dist.shape))
        data = LoggedRounds.from_log(sample.rewards, sample.actions, sample.positions, sample.propensities, action_dist, rewards)
        ess.append(effective_sample_size(data.weights))
        for name, estimator in ESTIMATORS.items():
            errors[name].append(abs(estimator(data) - truth) / truth)
        chosen.append(select_estimator(data))
        errors["selected"].append(errors[chosen[-1]][-1])
    return {"rounds": random_log.n_rounds, "actions": random_log.n_actions, "slots": random_log.len_list,
            "on_policy_value": round(truth, 6), "effective_sample_size": round(float(np.mean(ess)), 1),
            "selected": {name: chosen.count(name) for name in sorted(set(chosen))},
            "relative_error": {name: {"mean": round(float(np.mean(e)), 4), "std": round(float(np.std(e)), 4)}
                               for name, e in errors.items()}}


def run_obd_protocol(root: str | Path, *, campaigns: Sequence[str] = CAMPAIGNS, runs: int = 30, seed: int = 12345,
                     on_campaign: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """The protocol on every campaign of the Open Bandit Dataset folder `root` (`random/`, `bts/`)."""
    root = Path(root)
    unknown = [c for c in campaigns if c not in CAMPAIGNS]
    if unknown:
        raise DataError(f"unknown campaign(s) {unknown}; choose from {list(CAMPAIGNS)}")
    results = {}
    for campaign in campaigns:
        results[campaign] = _campaign(root, campaign, runs, seed)
        if on_campaign is not None:
            on_campaign(campaign, results[campaign])
    return {"dataset": str(root), "protocol": PROTOCOL, "runs": runs, "campaigns": results,
            "machine": machine_info(), "versions": versions()}


def compare_policies(root: str | Path, campaign: str = "all", *, train_share: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Bandit policies learned on the first `train_share` of the uniform-random log (in time order),
    valued by off-policy evaluation on the rest, beside the uniform and Bernoulli-TS policies."""
    log, bts = read_open_bandit(Path(root) / "random" / campaign), read_open_bandit(Path(root) / "bts" / campaign)
    shape = (log.n_rounds, log.n_actions, log.len_list)
    fixed = {"uniform": np.full(shape, 1 / log.n_actions), "bernoulli-ts": np.broadcast_to(logged_action_dist(bts), shape)}
    result = value_policies(log, fixed, train_share=train_share, seed=seed)
    return {"campaign": campaign, "train_rounds": result["train_rounds"], "test_rounds": result["test_rounds"],
            "test_clicks": int(result["test_reward_sum"]), "policies": result["policies"],
            "highest_dr_on_the_evaluation_part": result["highest_dr_on_the_evaluation_part"]}
