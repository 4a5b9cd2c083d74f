"""Task heads: pooling, head shapes, the training loop's early stopping and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from shopformer.models.heads import TaskHead, pool_states, task_loss
from shopformer.train.heads import HeadTraining, fit_head


def test_pool_states_reads_the_last_position_and_averages_real_positions_only():
    hidden = torch.tensor([[[9.0, 9.0], [1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0], [0.0, 2.0]]])
    valid = torch.tensor([[False, True, True], [True, True, True]])
    pooled = pool_states(hidden, valid)
    expected = torch.tensor([[3.0, 4.0, 2.0, 3.0], [0.0, 2.0, 4.0, 16.0 / 3.0]])
    assert torch.allclose(pooled, expected)


def test_head_output_shapes_and_candidate_requirement():
    state, extras = torch.randn(5, 8), torch.randn(5, 3)
    assert TaskHead(8, 3, 1)(state, extras).shape == (5,)
    assert TaskHead(8, 3, 4)(state, extras).shape == (5, 4)
    with_item = TaskHead(8, 3, 1, item_dim=4)
    assert with_item(state, extras, torch.randn(5, 4)).shape == (5,)
    with pytest.raises(ValueError, match="candidate"):
        with_item(state, extras)


def test_task_loss_weights_positives():
    logits, labels = torch.zeros(4), torch.tensor([1, 0, 0, 0])
    plain, weighted = task_loss(logits, labels), task_loss(logits, labels, pos_weight=3.0)
    assert weighted > plain
    assert torch.isclose(task_loss(torch.zeros(2, 3), torch.tensor([0, 2])), torch.log(torch.tensor(3.0)))


def test_fit_head_learns_and_restores_the_best_validation_weights():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(400, 2)).astype(np.float32))
    labels = (x[:, 0] > 0).numpy().astype(np.int64)
    module = nn.Linear(2, 1)
    scores = []

    def validate() -> float:
        # The score peaks at epoch 3 and falls after it: the loop must stop and restore epoch 3.
        scores.append(1.0 - abs(len(scores) - 2))
        return scores[-1]

    history = fit_head(module, [{"params": module.parameters(), "lr": 0.5}], lambda rows: module(x[rows])[:, 0],
                       labels, np.ones(400, dtype=np.int64), validate, HeadTraining(max_epochs=50, patience=2))
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[2]["train_loss"] < history[0]["train_loss"]
    with torch.no_grad():
        accuracy = ((module(x)[:, 0] > 0).numpy() == labels).mean()
    assert accuracy > 0.9


def test_item_scalars_learn_which_session_items_lead_to_the_label():
    rng = np.random.default_rng(0)
    sessions = torch.from_numpy(rng.integers(2, 12, size=(600, 4)))
    sessions[:, :2] = torch.where(torch.rand(600, 2) < 0.3, torch.zeros_like(sessions[:, :2]), sessions[:, :2])
    labels = (sessions == 5).any(1).numpy().astype(np.int64)  # sessions showing item 5 convert
    head = TaskHead(4, 1, 1, n_items=12, state_dropout=0.0)
    state, extras = torch.zeros(600, 4), torch.zeros(600, 1)
    epochs = iter(range(1000))  # a validation score that always improves: keep the last weights
    fit_head(head, [{"params": head.parameters(), "lr": 0.1}], lambda rows: head(state[rows], extras[rows], None, sessions[rows]),
             labels, np.ones(600, dtype=np.int64), lambda: float(next(epochs)), HeadTraining(max_epochs=30))
    bias = head.item_bias.weight[:, 0].detach()
    others = [code for code in range(2, 12) if code != 5]
    assert bias[5] > bias[others].max() + 1.0
    with pytest.raises(ValueError, match="session"):
        head(state, extras)
