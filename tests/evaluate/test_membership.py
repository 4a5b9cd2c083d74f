"""Membership inference: per-user losses from a scorer, and the loss-threshold attack's AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate.membership import loss_threshold_attack, user_losses

N_ITEMS = 6


def _next_code_scorer(histories: SequenceArrays) -> torch.Tensor:
    """Puts logit 3 on (last item + 1), 0 elsewhere; codes 0 and 1 are never candidates."""
    scores = torch.zeros(len(histories.lengths), N_ITEMS)
    last = histories.items[histories.offsets[1:] - 1]
    scores[torch.arange(len(last)), torch.from_numpy(np.minimum(last + 1, N_ITEMS - 1))] = 3.0
    scores[:, :2] = -torch.inf
    return scores


def test_a_users_loss_is_the_mean_cross_entropy_of_their_last_targets():
    sequences = SequenceArrays.from_lists([[2, 3, 4, 5], [5, 2], [3]])
    losses = user_losses(_next_code_scorer, sequences, targets_per_user=2)
    hit = -np.log(np.exp(3) / (np.exp(3) + 3))  # the target got the 3
    miss = -np.log(1 / (np.exp(3) + 3))
    assert losses[0] == pytest.approx(hit, rel=1e-5)  # targets 4 and 5 both follow their last item
    assert losses[1] == pytest.approx(miss, rel=1e-5) and np.isnan(losses[2])  # 2 does not follow 5; one event: no target


def test_the_attack_separates_lower_member_losses_and_not_equal_ones():
    rng = np.random.default_rng(0)
    leaked = loss_threshold_attack(rng.normal(1.0, 0.1, 500), rng.normal(2.0, 0.1, 500))
    assert leaked["auc"] > 0.99 and leaked["advantage"] > 0.95
    same = loss_threshold_attack(rng.normal(1.0, 0.5, 2000), rng.normal(1.0, 0.5, 2000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["members"] == 2000
    with pytest.raises(ValueError, match="at least one member"):
        loss_threshold_attack(np.array([np.nan]), np.array([1.0]))
