"""The slate simulation end to end on a tiny demo shop: training, new items, every policy counted."""

from __future__ import annotations

import pytest

from shopformer.benchmark.slate import run_slate_simulation
from shopformer.data.synth import DemoShopConfig


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_policy_is_counted_and_new_items_can_be_shown(tmp_path):
    result = run_slate_simulation(tmp_path, rounds=400, candidates=40, slots=3, train_minutes=0.05,
                                  config=DemoShopConfig(n_users=120, n_items=60, days=14, seed=2))
    policies = result["policies"]
    assert set(policies) == {"model top slots", "slate bandit", "random candidates", "oracle"}
    assert result["new_items"] == 6
    for row in policies.values():
        assert 0 < row["clicks_per_slate"] <= policies["oracle"]["clicks_per_slate"] + 1e-9
        assert 0 <= row["new_items_shown_per_slate"] <= 3
    assert policies["random candidates"]["new_items_shown_per_slate"] > 0  # new items are among the candidates
    assert len(policies["slate bandit"]["cumulative_clicks_every_100_rounds"]) == 4
