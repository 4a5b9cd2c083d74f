"""Losses: padding costs nothing and changes nothing; sampled softmax behaves like the full one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.models.config import ModelConfig
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train.objectives import (
    FullSoftmaxLoss,
    SampledSoftmaxLoss,
    mask_items,
    next_item_targets,
)

N_ITEMS = 20


def make_model(**overrides) -> BehaviourTransformer:
    torch.manual_seed(0)
    config = ModelConfig(dim=16, layers=1, heads=1, max_len=8, dropout=0.0, attention_dropout=0.0,
                         **({"use_text": False, "use_attributes": False, "use_price": False} | overrides))
    return BehaviourTransformer(config, N_ITEMS)


def test_padding_positions_do_not_change_the_loss():
    model, loss = make_model(), FullSoftmaxLoss()
    windows = torch.tensor([[2, 3, 4, 5, 6]])
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), windows], dim=1)
    inputs, targets = next_item_targets(windows)
    padded_inputs, padded_targets = next_item_targets(padded)
    expected = loss(model, model(inputs), targets)
    torch.testing.assert_close(loss(model, model(padded_inputs), padded_targets), expected)


def test_loss_ignores_whatever_the_model_outputs_at_padding():
    model, loss = make_model(), FullSoftmaxLoss()
    hidden = torch.randn(1, 4, 16)
    targets = torch.tensor([[0, 0, 5, 6]])
    noisy = hidden.clone()
    noisy[:, :2] = 1e6
    torch.testing.assert_close(loss(model, noisy, targets), loss(model, hidden, targets))


def test_sampled_softmax_with_many_uniform_negatives_matches_its_expected_value():
    model = make_model()
    hidden, targets = torch.randn(6, 16), torch.randint(2, N_ITEMS, (6,))
    n_negatives, n_real = 20_000, N_ITEMS - 2
    with torch.no_grad():
        sampled = SampledSoftmaxLoss(N_ITEMS, n_negatives, generator=torch.Generator().manual_seed(0))(model, hidden, targets)
        logits = hidden @ model.item_table()[2:].T
    # With q = 1 / n_real the corrected negatives sum to ~ n_negatives * (Z - exp(s_target))
    # (hits on the target are dropped) and the corrected positive is exp(s_target) * n_real.
    exp_target = logits.gather(1, (targets - 2)[:, None]).squeeze(1).exp()
    partition = logits.exp().sum(1)
    denominator = n_negatives * (partition - exp_target) + exp_target * n_real
    expected = (denominator.log() - (exp_target * n_real).log()).mean()
    assert float(sampled) == pytest.approx(float(expected), abs=0.02)


def test_popularity_sampling_never_draws_padding_or_unknown():
    counts = np.arange(N_ITEMS, dtype=np.int64)
    loss = SampledSoftmaxLoss(N_ITEMS, 8, counts)
    assert float(loss.probability[:2].sum()) == 0.0
    assert torch.isclose(loss.probability.sum(), torch.tensor(1.0))


def test_masking_hides_only_real_items_and_always_the_last():
    items = torch.tensor([[0, 0, 3, 4, 5], [2, 3, 4, 5, 6]])
    masked, targets = mask_items(items, 0.5, torch.Generator().manual_seed(0))
    assert not masked[0, :2].any()
    assert masked[:, -1].all()
    assert torch.equal(targets[masked], items[masked]) and (targets[~masked] == 0).all()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_full_softmax_matches_torch_cross_entropy_and_its_gradients(smoothing):
    model = make_model()
    hidden = torch.randn(5, 16, requires_grad=True)
    targets = torch.randint(2, N_ITEMS, (5,))
    table = model.item_table()
    reference = torch.nn.functional.cross_entropy(hidden @ table[2:].T, targets - 2, label_smoothing=smoothing)
    expected = torch.autograd.grad(reference, [hidden, model.item_encoder.id_embedding.weight])
    loss = FullSoftmaxLoss(smoothing)(model, hidden, targets)
    torch.testing.assert_close(loss, reference)
    for got, want in zip(torch.autograd.grad(loss, [hidden, model.item_encoder.id_embedding.weight]), expected):
        torch.testing.assert_close(got, want)
