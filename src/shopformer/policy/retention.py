"""A retention simulator, week by week, where what a message does now and later differ.

Users are the demo shop's customers (their segment's visit rate and conversion, churner or not,
from the generator's ground truth); every week the policy either does nothing or sends a win-back
message, seeing only the user's state:

    [weeks since the last visit / 12, visits in the last 4 weeks / 4, messages in the last 4 weeks / 4,
     log1p(orders so far), week / horizon]

Ground truth per week (hidden from the policy):
* visit log-odds = logit(base weekly visit rate) - 0.25 min(weeks since visit, 8)
  + a message's pull: 1.2 for a user away 2 weeks or more, minus 0.6 per message in the last 4 weeks;
* a visit buys with the segment's conversion, earning MARGIN x ORDER_VALUE; a message costs 0.05;
* each week a user may leave for good: 1% (+4% for churners), plus 8% when messaged for the one in
  four users that messages annoy, plus 3% per recent message (fatigue).
So a message pays at once (the visit it pulls) and costs later (users it drives away): a myopic
policy over-sends; a long-horizon one should space messages and spare users who are not drifting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.synth.users import SEGMENTS
from shopformer.policy.rl import Transitions

__all__ = ["HORIZON", "RetentionUsers", "retention_users", "rollout"]

HORIZON, ORDER_VALUE, MARGIN, MESSAGE_COST = 26, 40.0, 0.3, 0.05
ANNOYABLE_SHARE = 0.25
NOTHING, MESSAGE = 0, 1


@dataclass(frozen=True)
class RetentionUsers:
    visit_log_odds: np.ndarray
    conversion: np.ndarray
    churner: np.ndarray
    annoyable: np.ndarray

    def __len__(self) -> int:
        return len(self.conversion)

    def take(self, rows: np.ndarray) -> RetentionUsers:
        return RetentionUsers(self.visit_log_odds[rows], self.conversion[rows], self.churner[rows], self.annoyable[rows])


def retention_users(ground_truth: str | Path, *, seed: int = 0) -> RetentionUsers:
    """Regular customers of the demo shop (`ground_truth/users.csv`), their hidden traits drawn once."""
    users = pl.read_csv(ground_truth).filter((pl.col("is_bot") == 0) & (pl.col("is_fraudster") == 0))
    by_name = {s.name: s for s in SEGMENTS}
    segment = [by_name[name] for name in users["segment"].to_list()]
    weekly = 1 - np.exp(-3.5 * np.array([s.sessions_per_day for s in segment]))
    conversion = 1 / (1 + np.exp(-(-1.0 + np.array([s.conversion_bias for s in segment]))))
    rng = np.random.default_rng(seed)
    return RetentionUsers(np.log(weekly / (1 - weekly)), conversion, users["is_churner"].to_numpy().astype(float),
                          (rng.random(users.height) < ANNOYABLE_SHARE).astype(float))


def _observe(away: np.ndarray, visits: np.ndarray, messages: np.ndarray, orders: np.ndarray, week: int) -> np.ndarray:
    return np.column_stack([np.minimum(away, 12) / 12, visits.sum(1) / 4, messages.sum(1) / 4, np.log1p(orders),
                            np.full(len(away), week / HORIZON)])


def rollout(users: RetentionUsers, choose: Callable[[np.ndarray], np.ndarray], *, seed: int = 0,
            explore: float = 0.0) -> tuple[np.ndarray, Transitions]:
    """Every user's total reward over HORIZON weeks under `choose(state) -> action`, and the transitions
    (with a share `explore` of actions drawn at random, for logging data to learn from)."""
    rng = np.random.default_rng(seed)
    n = len(users)
    away, orders = np.zeros(n), np.zeros(n)
    visits, messages = np.zeros((n, 4)), np.zeros((n, 4))
    alive, total = np.ones(n, dtype=bool), np.zeros(n)
    logged: list[tuple[np.ndarray, ...]] = []
    for week in range(HORIZON):
        state = _observe(away, visits, messages, orders, week)
        action = np.where(rng.random(n) < explore, rng.integers(0, 2, n), choose(state))
        sent = (action == MESSAGE).astype(float)
        recent = messages.sum(1)
        pull = sent * (1.2 * (away >= 2) - 0.6 * recent)
        visited = alive & (rng.random(n) < 1 / (1 + np.exp(-(users.visit_log_odds - 0.25 * np.minimum(away, 8) + pull))))
        bought = visited & (rng.random(n) < users.conversion)
        reward = bought * MARGIN * ORDER_VALUE - sent * MESSAGE_COST * alive
        leave = 0.01 + 0.04 * users.churner + sent * (0.08 * users.annoyable + 0.03 * recent)
        alive_after = alive & (rng.random(n) >= leave)
        away = np.where(visited, 0, away + 1)
        orders += bought
        visits = np.column_stack([visits[:, 1:], visited])
        messages = np.column_stack([messages[:, 1:], sent])
        done = ~alive_after | (week == HORIZON - 1)
        rows = alive
        logged.append((state[rows], action[rows], reward[rows], _observe(away, visits, messages, orders, week + 1)[rows],
                       done[rows].astype(float)))
        total += reward
        alive = alive_after
    return total, Transitions(*(np.concatenate(part) for part in zip(*logged)))
