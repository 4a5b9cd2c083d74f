"""Regret of next-best-action policies on the demo-shop simulator, against the oracle, rules and peers.

Streams are written first (`write_streams`), so peers in their own environments can play the very
same rounds (`benchmarks/peers/mabwiser_linucb.py`); `run_simulation` then plays Shopformer's
policies on each stream, reads the peers' actions and reports each policy's cumulative regret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopformer.data.synth import DemoShopConfig
from shopformer.policy.actions import ActionConfig
from shopformer.policy.bandits import EpsilonGreedy, LinUCB
from shopformer.policy.decide import make_bandit
from shopformer.policy.simulate import ACTIONS, RULES, Stream, demo_world, make_stream, play, regret
from shopformer.runtime import machine_info

__all__ = ["DEFAULT_POLICY", "plot_regret", "run_simulation", "write_streams"]

#: What `shopformer serve --actions` runs when the file names no policy: its policy and exploration floor.
DEFAULT_POLICY = f"default: {ActionConfig.model_fields['policy'].default}, noise-scaled"
_FLOOR = ActionConfig.model_fields["exploration"].default
_CURVE_POINTS = 200


def _policies(n_actions: int, dim: int, seed: int) -> dict[str, tuple[Any, float]]:
    """Each learning policy and the share of its rounds drawn uniformly."""
    return {
        DEFAULT_POLICY: (make_bandit(ActionConfig.model_fields["policy"].default, n_actions, dim, seed=seed), _FLOOR),
        "linear-thompson": (make_bandit("linear-thompson", n_actions, dim, seed=seed), _FLOOR),
        "neural-linear-thompson": (make_bandit("neural-linear-thompson", n_actions, dim, seed=seed), _FLOOR),
        "epsilon-greedy (0.1)": (EpsilonGreedy(n_actions, dim, epsilon=0.1, seed=seed), 0.0),
        "linucb (alpha 1, unscaled)": (LinUCB(n_actions, dim, alpha=1.0, seed=seed), 0.0),
    }


def write_streams(shop_dir: str | Path, out_dir: str | Path, seeds: Sequence[int], *, rounds: int = 100_000,
                  batch: int = 100, config: DemoShopConfig | None = None) -> list[Path]:
    """One stream file per seed (`stream_<seed>.npz`) from the demo shop under `shop_dir` (generated
    there with `config` unless it exists)."""
    world = demo_world(shop_dir, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        make_stream(world, rounds, batch=batch, seed=seed).save(out_dir / f"stream_{seed}.npz")
        paths.append(out_dir / f"stream_{seed}.npz")
    return paths


def _curve(cumulative: np.ndarray) -> list[float]:
    at = np.linspace(0, len(cumulative) - 1, _CURVE_POINTS).round().astype(int)
    return [round(float(v), 2) for v in cumulative[at]]


def _play_stream(stream: Stream, peers: dict[str, np.ndarray], on_policy: Callable[[str, float], None] | None) -> dict:
    n_actions, dim = stream.rewards.shape[1], stream.context.shape[1]
    runs: dict[str, dict[str, Any]] = {}
    for name, choices in zip(RULES, stream.rule_choices):
        runs[name] = {"kind": "rule", "actions": choices, "seconds": 0.0}
    for name, (policy, floor) in _policies(n_actions, dim, stream.seed).items():
        started = time.perf_counter()
        runs[name] = {"kind": "shopformer", "actions": play(policy, stream, exploration=floor),
                      "seconds": time.perf_counter() - started}
        if on_policy:
            on_policy(name, runs[name]["seconds"])
    for name, actions in peers.items():
        runs[name] = {"kind": "peer", "actions": actions, "seconds": None}
    out = {}
    for name, run in runs.items():
        cumulative = regret(stream, run["actions"])
        share = np.bincount(run["actions"], minlength=n_actions) / len(run["actions"])
        out[name] = {"kind": run["kind"], "regret": round(float(cumulative[-1]), 1), "curve": _curve(cumulative),
                     "seconds": run["seconds"], "action_shares": dict(zip(ACTIONS, np.round(share, 4).tolist()))}
    return out


def run_simulation(streams: Sequence[str | Path], peers: dict[str, Sequence[str | Path]] | None = None, *,
                   on_policy: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Every policy, rule and peer on every stream; `peers[name][i]` holds that peer's actions on `streams[i]`."""
    peers = peers or {}
    per_stream = []
    for index, path in enumerate(streams):
        stream = Stream.load(path)
        peer_actions = {name: _peer_actions(files[index], len(stream.context)) for name, files in peers.items()}
        result = _play_stream(stream, peer_actions, on_policy)
        per_stream.append({"stream": Path(path).name, "seed": stream.seed, "rounds": len(stream.context),
                           "oracle_reward": round(float(stream.expected.max(1).sum()), 1), "policies": result})
    names = list(per_stream[0]["policies"])
    summary = {name: {"mean_regret": round(float(np.mean([s["policies"][name]["regret"] for s in per_stream])), 1)}
               for name in names}
    default = [s["policies"][DEFAULT_POLICY]["regret"] for s in per_stream]
    for name in names:
        other = [s["policies"][name]["regret"] for s in per_stream]
        summary[name]["default_over_this"] = round(float(np.mean(np.array(default) / np.array(other))), 4)
        summary[name]["default_lower_on_streams"] = int(sum(d < o for d, o in zip(default, other)))
    return {"protocol": _PROTOCOL, "actions": list(ACTIONS), "default_policy": DEFAULT_POLICY, "streams": per_stream,
            "summary": summary, "machine": machine_info()}


_PROTOCOL = ("Each stream: decisions at visits of regular demo-shop customers, sampled with replacement; "
             "first batch uniformly random, then batches of `batch` rounds decided by the model learned from all "
             "earlier batches; regret is the sum over rounds of the oracle's expected reward minus the expected "
             "reward of the action taken (the oracle knows the simulator's hidden traits).")


def _peer_actions(path: str | Path, rounds: int) -> np.ndarray:
    with np.load(path) as data:
        actions = data["actions"].astype(int)
    if len(actions) != rounds:
        raise ValueError(f"{path}: {len(actions)} actions for a stream of {rounds} rounds")
    return actions


def plot_regret(result: dict[str, Any], path: str | Path) -> Path:
    """Mean cumulative regret over the streams, one line per policy, rule and peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = result["streams"]
    rounds = streams[0]["rounds"]
    x = np.linspace(0, rounds, _CURVE_POINTS)
    figure, axis = plt.subplots(figsize=(8, 5))
    styles = {"rule": ":", "peer": "--", "shopformer": "-"}
    for name, first in streams[0]["policies"].items():
        curve = np.mean([s["policies"][name]["curve"] for s in streams], axis=0)
        axis.plot(x, curve, styles[first["kind"]], linewidth=2.5 if name == DEFAULT_POLICY else 1.3, label=name)
    axis.set(xlabel="decisions", ylabel="cumulative regret against the oracle",
             title=f"Next best action on the demo shop, mean of {len(streams)} streams")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


#: Fixed retention rules, on the state `policy.retention` shows (column 0: weeks away / 12; 2: recent messages / 4).
RETENTION_RULES = {
    "never message": lambda s: np.zeros(len(s), dtype=int),
    "message every lapsing user (away 2+ weeks)": lambda s: (s[:, 0] >= 2 / 12).astype(int),
    "message lapsing users, at most once in 4 weeks": lambda s: ((s[:, 0] >= 2 / 12) & (s[:, 2] == 0)).astype(int),
}


def run_retention(shop_dir: str | Path, *, train_users: int = 1000, replicas: int = 4, explore: float = 0.3,
                  gamma: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Fitted Q iteration against the myopic policy (the same regression with gamma 0) and rules, on
    held-out demo-shop users: mean reward per user over the horizon, paired bootstrap CIs (over users)
    against myopic."""
    from shopformer.policy.retention import HORIZON, retention_users, rollout
    from shopformer.policy.rl import fitted_q_iteration

    users = retention_users(Path(shop_dir) / "ground_truth" / "users.csv", seed=seed)
    train_users = min(train_users, len(users) // 2)
    order = np.random.default_rng(seed).permutation(len(users))
    train = users.take(np.tile(order[:train_users], replicas))
    test = users.take(np.tile(order[train_users:], replicas))
    # Logged data: mostly no message, a random one with probability explore / 2.
    _, logged = rollout(train, RETENTION_RULES["never message"], seed=seed + 1, explore=explore)
    policies: dict[str, Callable] = dict(RETENTION_RULES)
    started = time.perf_counter()
    policies["myopic (FQI, gamma 0)"] = fitted_q_iteration(logged, 2, gamma=0.0, seed=seed).choose
    policies[f"fitted Q iteration (gamma {gamma:g})"] = fitted_q_iteration(logged, 2, gamma=gamma, seed=seed).choose
    fit_seconds = time.perf_counter() - started
    totals = {name: rollout(test, choose, seed=seed + 2)[0] for name, choose in policies.items()}
    myopic = totals["myopic (FQI, gamma 0)"]
    rng = np.random.default_rng(seed + 3)
    n_users = len(order) - train_users
    # Replicas of one user share their hidden traits: the bootstrap resamples users, each with all its replicas.
    draws = [rng.integers(0, n_users, n_users) for _ in range(1000)]
    out = {}
    for name, total in totals.items():
        difference = total - myopic
        per_user = difference.reshape(replicas, n_users).mean(0)
        boot = [per_user[d].mean() for d in draws]
        out[name] = {"mean_reward_per_user": round(float(total.mean()), 3),
                     "minus_myopic": round(float(difference.mean()), 3),
                     "minus_myopic_95ci": [round(float(v), 3) for v in np.percentile(boot, [2.5, 97.5])]}
    return {"horizon_weeks": HORIZON, "train_users": train_users, "test_users": len(order) - train_users,
            "replicas": replicas, "logged_transitions": len(logged.reward), "explore": explore, "gamma": gamma,
            "fit_seconds": round(fit_seconds, 1), "policies": out}
