"""Linear bandits learn which action pays in which context, and give proper slate distributions."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.policy.bandits import POLICIES


def _rounds(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    context = np.column_stack([np.ones(n), rng.integers(0, 2, n)])
    actions = rng.integers(0, 4, n)
    best = np.where(context[:, 1] == 1, 3, 0)  # action 3 pays in context 1, action 0 in context 0
    rewards = (rng.random(n) < np.where(actions == best, 0.6, 0.1)).astype(float)
    return context, actions, rewards


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_policy_puts_the_paying_action_first_and_its_slots_sum_to_one(name):
    context, actions, rewards = _rounds(4000)
    policy = POLICIES[name](4, 2).update(context, actions, rewards)
    test = np.array([[1.0, 0.0], [1.0, 1.0]])
    dist = policy.action_dist(test, slots=2)
    assert dist.shape == (2, 4, 2) and np.allclose(dist.sum(1), 1.0)
    assert dist[0, 0, 0] > 0.8 and dist[1, 3, 0] > 0.8  # the first slot goes to the paying action
