"""Uplift learners find a planted effect, and refuse data they cannot learn from."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.evaluate.uplift import qini_coefficient
from shopformer.policy.uplift import LEARNERS, fit_uplift


def _experiment(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    treated = (rng.random(n) < 0.5).astype(float)
    rate = 0.1 + 0.25 * treated * (x[:, 0] > 0)  # the treatment works only where x0 > 0
    return x, treated, (rng.random(n) < rate).astype(float)


@pytest.mark.parametrize("kind", LEARNERS)
def test_every_learner_ranks_the_responsive_users_first(kind):
    x, t, y = _experiment(6000, seed=0)
    learner = fit_uplift(kind, x, t, y)
    x_test, t_test, y_test = _experiment(4000, seed=1)
    scores = learner.predict(x_test)
    assert scores[x_test[:, 0] > 0].mean() > scores[x_test[:, 0] <= 0].mean() + 0.1
    oracle = qini_coefficient(y_test, t_test, (x_test[:, 0] > 0).astype(float))  # the true effect's ranking
    assert qini_coefficient(y_test, t_test, scores) > 0.8 * oracle > 0.1


def test_unknown_learners_and_one_armed_data_are_refused():
    x, t, y = _experiment(200, seed=0)
    with pytest.raises(ValueError, match="unknown uplift learner"):
        fit_uplift("causal-forest", x, t, y)
    with pytest.raises(ValueError, match="both treated and control"):
        fit_uplift("t", x, np.ones_like(t), y)
