"""The slate bandit: shared parameters learn what gets clicked and carry it to items never shown."""

from __future__ import annotations

import numpy as np

from shopformer.policy.slate import SlateBandit, SlateFeatures


def test_features_have_the_documented_layout():
    vectors = np.random.default_rng(0).normal(size=(40, 6))
    features = SlateFeatures(vectors, components=3)
    phi = features(np.array([3.0, 1.0, 2.0]), np.array([5, 6, 7]), history=np.array([1, 2]))
    assert phi.shape == (3, features.dim) == (3, 8)
    np.testing.assert_allclose(phi[:, 0], 1.0)
    assert phi[0, 1] > phi[2, 1] > phi[1, 1]  # the standardised model score keeps its order
    np.testing.assert_allclose(phi[:, 5:], phi[:, 2:5] * features.taste(np.array([1, 2])))


def test_clicks_teach_the_bandit_a_trait_that_generalises_to_unseen_items():
    rng = np.random.default_rng(1)
    bandit = SlateBandit(3)
    for _ in range(300):  # items with a high second feature get clicked
        phi = np.column_stack([np.ones(20), rng.normal(size=20), rng.normal(size=20)])
        shown = bandit.choose(phi, 3)
        bandit.update(phi[shown], rng.random(3) < 1 / (1 + np.exp(-(2 * phi[shown, 1] - 1))))
    fresh = np.column_stack([np.ones(50), rng.normal(size=50), rng.normal(size=50)])
    chosen = bandit.choose(fresh, 5)
    assert fresh[chosen, 1].mean() > 1.0 and len(set(chosen)) == 5


def test_an_untrained_bandit_explores_by_width_alone():
    bandit = SlateBandit(2)
    phi = np.array([[1.0, 0.0], [1.0, 3.0]])
    assert bandit.choose(phi, 1)[0] == 1  # no data: the widest candidate first
