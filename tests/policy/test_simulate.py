"""The demo-shop simulators: ground truth that behaves as documented, streams, the learning protocol, FQI."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.data.synth import DemoShopConfig
from shopformer.policy.bandits import LinUCB
from shopformer.policy.retention import retention_users, rollout
from shopformer.policy.rl import fitted_q_iteration
from shopformer.policy.simulate import (
    ACTIONS,
    RULES,
    Stream,
    demo_world,
    expected_rewards,
    make_stream,
    play,
    purchase_probabilities,
    regret,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim-shop")
    return root, demo_world(root, DemoShopConfig(n_users=150, n_items=80, days=21, seed=4))


def test_responses_follow_the_documented_ground_truth(shop):
    _, world = shop
    probability = purchase_probabilities(world)
    coupons = [ACTIONS.index(name) for name in ("coupon-5", "coupon-10", "coupon-20")]
    assert np.all(np.diff(probability[:, coupons], axis=1) >= 0) and np.all(probability[:, coupons[0]] >= probability[:, 0])
    cold = world.warm_cart == 0
    np.testing.assert_allclose(probability[cold, ACTIONS.index("cart-reminder")], probability[cold, 0])
    expected = expected_rewards(world)
    win_back = expected[:, ACTIONS.index("win-back")] - expected[:, 0]
    assert np.all(win_back[(world.at_risk == 1) & (world.annoyed == 0)] > 0)
    assert np.all(win_back[(world.at_risk == 0) & (world.annoyed == 1)] < 0)
    assert len(world) > 100 and 0 < world.warm_cart.mean() < 1


def test_a_stream_shares_luck_across_actions_and_round_trips(shop, tmp_path):
    _, world = shop
    stream = make_stream(world, 3000, batch=50, seed=3)
    assert stream.rewards.shape == stream.expected.shape == (3000, len(ACTIONS))
    assert stream.rule_choices.shape == (len(RULES), 3000)
    # Realised means approach the expected ones (the luck is shared, not biased).
    assert abs(stream.rewards.mean() - stream.expected.mean()) < 0.1 * abs(stream.expected.mean()) + 0.2
    stream.save(tmp_path / "s.npz")
    loaded = Stream.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.rewards, stream.rewards)
    assert (loaded.batch, loaded.seed) == (50, 3)


def test_play_starts_uniformly_and_a_learner_beats_its_random_start(shop):
    _, world = shop
    stream = make_stream(world, 20_000, batch=100, seed=5)
    actions = play(LinUCB(len(ACTIONS), stream.context.shape[1], noise_scaled=True), stream)
    np.testing.assert_array_equal(actions[:100], np.random.default_rng(5).integers(len(ACTIONS), size=100))
    uniform = np.random.default_rng(0).integers(len(ACTIONS), size=len(actions))
    assert regret(stream, actions)[-1] < 0.9 * regret(stream, uniform)[-1]
    assert np.all(np.diff(regret(stream, actions)) >= -1e-9)  # the oracle is never beaten in expectation


def test_fitted_q_iteration_looks_further_ahead_than_the_myopic_policy(shop):
    root, _ = shop
    users = retention_users(root / "ground_truth" / "users.csv")
    train, test = users.take(np.tile(np.arange(len(users)), 6)), users.take(np.tile(np.arange(len(users)), 6))
    _, logged = rollout(train, lambda s: np.zeros(len(s), dtype=int), seed=1, explore=0.3)
    myopic = fitted_q_iteration(logged, 2, gamma=0.0)
    ahead = fitted_q_iteration(logged, 2, gamma=0.9, iterations=8)
    assert rollout(test, ahead.choose, seed=2)[0].mean() > rollout(test, myopic.choose, seed=2)[0].mean()
    # Same seed, same policy: the same luck.
    np.testing.assert_array_equal(rollout(test, myopic.choose, seed=2)[0], rollout(test, myopic.choose, seed=2)[0])
