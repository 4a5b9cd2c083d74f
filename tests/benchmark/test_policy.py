"""The Open Bandit protocol: action shares of a log, and a short run on the shared sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopformer.benchmark.policy import logged_action_dist, run_obd_protocol
from shopformer.data.bandit import BanditLog
from shopformer.errors import DataError

OBD = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "open-bandit-sample"


def test_a_logs_action_shares_sum_to_one_per_slot():
    log = BanditLog(np.zeros((4, 1)), np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), np.zeros(4), np.full(4, 0.5), np.eye(3))
    dist = logged_action_dist(log)
    assert np.allclose(dist[:, 0], [2 / 3, 1 / 3, 0]) and np.allclose(dist[:, 1], [0, 1, 0])


def test_unknown_campaigns_are_named():
    with pytest.raises(DataError, match="unknown campaign"):
        run_obd_protocol(OBD, campaigns=["kids"])


@pytest.mark.skipif(not OBD.is_dir(), reason="the shared Open Bandit Dataset sample is not here")
def test_one_bootstrap_run_reports_every_estimator():
    document = run_obd_protocol(OBD, campaigns=["men"], runs=1)
    result = document["campaigns"]["men"]
    assert set(result["relative_error"]) == {"dm", "ips", "snips", "dr", "sndr", "switch-dr", "dr-os", "selected"}
    assert 0 < result["on_policy_value"] < 0.05 and sum(result["selected"].values()) == 1


@pytest.mark.skipif(not OBD.is_dir(), reason="the shared Open Bandit Dataset sample is not here")
def test_learned_policies_are_valued_beside_the_logged_ones():
    from shopformer.benchmark.policy import compare_policies

    result = compare_policies(OBD, "men")
    assert set(result["policies"]) == {"uniform", "bernoulli-ts", "linucb", "linear-thompson", "epsilon-greedy"}
    uniform = result["policies"]["uniform"]
    assert uniform["effective_sample_size"] == pytest.approx(result["test_rounds"])  # the log's own policy: weights 1
    assert uniform["ips"]["value"] == pytest.approx(result["test_clicks"] / result["test_rounds"])
