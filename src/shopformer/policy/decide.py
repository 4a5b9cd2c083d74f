"""Next best action: one decision for one user, under the shop's rules, logged, learned from outcomes.

A decision (1) drops the actions whose eligibility rules fail on the user's state, (2) under the
decision log's write lock drops those whose cap or budget has no room, (3) turns the bandit's
scores minus each action's cost into choice probabilities over what is left, with a floor of
`exploration / allowed` for each (so every logged decision can be re-weighted by off-policy
evaluation later), (4) draws the action and stores it with its probability. Outcomes update the
bandit online; at start the bandit is rebuilt by replaying the log's decisions that have outcomes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import numpy as np

from shopformer.policy.actions import ActionConfig
from shopformer.policy.bandits import POLICIES, EpsilonGreedy, LinearBandit
from shopformer.policy.log import Decision, DecisionLog, Room
from shopformer.policy.neural import NeuralLinearThompson
from shopformer.policy.slate import SlatePolicy
from shopformer.policy.state import context_vector

__all__ = ["DRAWS", "Candidates", "NextBestAction", "choice_probabilities", "make_bandit"]

#: Thompson draws per decision for its choice probabilities (their Monte-Carlo error is about 1/sqrt(DRAWS)).
DRAWS = 512


def choice_probabilities(bandit: LinearBandit, context: np.ndarray, costs: np.ndarray, allowed: np.ndarray,
                         exploration: float, draws: int = DRAWS) -> np.ndarray:
    """(rounds, actions): each action's probability of being the best allowed one by score minus cost,
    mixed with a uniform choice among the allowed ones at rate `exploration`."""
    allowed = np.atleast_2d(allowed)
    samples = bandit.sampled_scores(context, draws) - costs
    samples = np.where(allowed[None], samples, -np.inf)
    best = samples.argmax(2)  # (draws, rounds)
    probs = np.stack([np.bincount(row, minlength=bandit.n_actions) for row in best.T]) / best.shape[0]
    floor = max(exploration, bandit.epsilon if isinstance(bandit, EpsilonGreedy) else 0.0)
    return (1 - floor) * probs + floor * allowed / allowed.sum(1, keepdims=True)


def make_bandit(policy: str, n_actions: int, dim: int, *, seed: int | None = None):
    """The bandit a config's `policy` names, with the scale-free settings decisions use: exploration
    that follows the rewards' estimated noise, whatever their unit."""
    if policy == "neural-linear-thompson":
        return NeuralLinearThompson(n_actions, dim, seed=seed)
    options = {"linucb": {"noise_scaled": True}, "linear-thompson": {"scale": None}}.get(policy, {})
    return POLICIES[policy](n_actions, dim, seed=seed, **options)


@dataclass(frozen=True)
class Choice:
    decision: Decision
    reasons: list[str]


@dataclass(frozen=True)
class Candidates:
    """What a slate is chosen from: the model's top unseen items for the user, and the user's history."""

    item_ids: list[str]
    codes: np.ndarray
    scores: np.ndarray
    history: np.ndarray


class NextBestAction:
    """The shop's actions, a bandit over them and the decision log. Safe to call from several threads:
    the bandit is updated under a lock, and caps are enforced by the log's transaction."""

    def __init__(self, config: ActionConfig, log: DecisionLog, *, seed: int | None = None) -> None:
        self.config, self.log, self.exploration = config, log, config.exploration
        self.version = f"{config.policy}-{hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:10]}"
        self.bandit = make_bandit(config.policy, len(config.actions), 1 + len(config.features), seed=seed)
        self.costs = np.array([a.cost for a in config.actions])
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self.replayed = sum(self._learn(decision) for decision in log.decisions(with_outcome=True))
        self.slates: SlatePolicy | None = None

    def use_item_vectors(self, item_vectors: np.ndarray, model_version: str, decisions: list[Decision]) -> None:
        """Starts the slate policy on a bundle's item vectors, replaying the clicks on that bundle's slates
        among `decisions` (the log's decisions with outcomes, read by the caller)."""
        slates = SlatePolicy(item_vectors, model_version)
        for decision in decisions:
            if decision.slate and decision.clicked is not None and decision.slate["model_version"] == model_version:
                slates.learn(np.array(decision.slate["features"]), np.isin(decision.slate["items"], decision.clicked))
        with self._lock:
            self.slates = slates

    def decide(self, user_id: str, state: dict[str, float], now: float | None = None,
               candidates: Candidates | None = None) -> Choice:
        """Chooses, logs and returns one action for `user_id` in `state` (see `policy.state`); a slate
        action picks its items from `candidates` with the slate policy, and is not allowed without them."""
        now = time.time() if now is None else now
        failed = self.config.failed_rules(state)
        reasons: list[str] = []

        def choose(room: Room) -> tuple[str, float, dict[str, float], str, dict | None, list[str]]:
            blocked = room.allowed(self.config)
            for action in self.config.actions:
                if action.kind == "slate" and blocked[action.name] is None and not self._can_fill(candidates):
                    blocked[action.name] = "no candidate items for a slate"
            allowed = np.array([not failed[a] and blocked[a] is None for a in self.config.names])
            allowed[self.config.names.index(self.config.fallback)] = True
            with self._lock:
                context = context_vector(state, self.config.features)
                probs = choice_probabilities(self.bandit, context, self.costs, allowed, self.exploration)[0]
                pick = int(self._rng.choice(len(probs), p=probs / probs.sum()))
                action = self.config.actions[pick]
                slate = self._slate(candidates, action) if action.kind == "slate" else None
            reasons.extend(self._reasons(failed, blocked, probs, pick, int(allowed.sum())))
            names = [name for name, ok in zip(self.config.names, allowed) if ok]
            return action.name, float(probs[pick]), state, self.version, slate, names

        return Choice(self.log.decide(user_id, self.config, now, choose), reasons)

    def _can_fill(self, candidates: Candidates | None) -> bool:
        return candidates is not None and self.slates is not None and bool(candidates.item_ids)

    def _slate(self, candidates: Candidates, action) -> dict:
        n = action.candidates or len(candidates.item_ids)  # this action's own share of the model's top items
        chosen, features = self.slates.propose(candidates.scores[:n], candidates.codes[:n], candidates.history, action.size or 10)
        return {"items": [candidates.item_ids[i] for i in chosen], "features": np.round(features, 6).tolist(),
                "model_version": self.slates.model_version}

    def _reasons(self, failed: dict[str, list[str]], blocked: dict[str, str | None], probs: np.ndarray, pick: int,
                 n_allowed: int) -> list[str]:
        out = [f"{name} not eligible: {', '.join(rules)} does not hold" for name, rules in failed.items() if rules]
        out += [f"{name} not allowed now: {why}" for name, why in blocked.items() if why and not failed[name]]
        chosen = self.config.names[pick]
        out.append(f"chose {chosen} with probability {probs[pick]:.3f} among {n_allowed} allowed actions "
                   f"(learned from {int(self.bandit.counts[pick])} outcomes of {chosen})")
        return out

    def record_outcome(self, decision_id: str, reward: float, now: float | None = None,
                       clicked: list[str] | None = None) -> Decision:
        """Stores the decision's outcome (and which of a slate's items were clicked) and learns from it at once."""
        before = self.log.get(decision_id)
        decision = self.log.record_outcome(decision_id, reward, time.time() if now is None else now, clicked)
        if before.reward is None:
            self._learn(decision)
            slate, slates = decision.slate, self.slates
            if slate and clicked is not None and slates is not None and slate["model_version"] == slates.model_version:
                with self._lock:
                    slates.learn(np.array(slate["features"]), np.isin(slate["items"], clicked))
        return decision

    def _learn(self, decision: Decision) -> bool:
        """Learns from one outcome; False for decisions this config cannot read: an action removed since,
        a context without the features it uses (e.g. from before `use_predictions`), an erased user's."""
        if decision.action not in self.config.names or any(f not in decision.context for f in self.config.features):
            return False
        with self._lock:
            self.bandit.update(context_vector(decision.context, self.config.features),
                               np.array([self.config.names.index(decision.action)]), np.array([decision.reward]))
        return True
