"""Cross-fitted reward models: probabilities per round, action and slot that follow the data."""

from __future__ import annotations

import numpy as np

from shopformer.data.bandit import BanditLog
from shopformer.policy.reward import cross_fitted_rewards


def test_the_reward_model_learns_which_action_gets_clicked():
    rng = np.random.default_rng(0)
    n = 3000
    actions, positions = rng.integers(0, 3, n), rng.integers(0, 2, n)
    rewards = (rng.random(n) < np.where(actions == 2, 0.3, 0.03)).astype(float)
    log = BanditLog(np.zeros((n, 1)), actions, positions, rewards, np.full(n, 1 / 3), np.eye(3))
    q = cross_fitted_rewards(log)
    assert q.shape == (n, 3, 2) and q.min() >= 0 and q.max() <= 1
    assert q[:, 2].mean() > 0.2 > 0.06 > q[:, 0].mean()
