"""User-level DP-SGD: clipping per user, the noise really is there, and the privacy spent is accounted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.models.inputs import gather_windows
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train import Trainer
from shopformer.train.objectives import FullSoftmaxLoss, next_item_targets
from shopformer.train.privacy import DPPlan, noisy_mean, one_window_each, plan_dp, sampled_users
from shopformer.train.trainer import validation_metrics
from shopformer.train.user_gradients import UserClippedGradients
from tests.train.test_trainer import N_ITEMS, cyclic_sequences, model_config, splits, train_config

PLAN = DPPlan(epsilon=3.0, delta=1e-3, noise_multiplier=1.5, max_grad_norm=2.0, sample_rate=0.1, steps=10)


def _featured_model(**overrides) -> BehaviourTransformer:
    """A small model with every item part the private gradient covers (ids, attributes, price, text)."""
    torch.manual_seed(0)
    config = model_config(**({"max_len": 12, "dropout": 0.0, "attention_dropout": 0.0, "use_price": True, "use_attributes": True,
                              "use_text": True} | overrides))
    attributes = torch.randint(0, 6, (N_ITEMS, 3))
    price = torch.randint(0, 4, (N_ITEMS,))
    text = torch.nn.functional.normalize(torch.randn(N_ITEMS, 12), dim=1)
    model = BehaviourTransformer(config, N_ITEMS, 4, attribute_index=attributes, price_bucket=price, text=text)
    known = torch.ones(N_ITEMS, dtype=torch.bool)
    known[N_ITEMS - 3:] = False  # a few items never seen in training: their id vectors get no gradient
    model.item_encoder.mark_known_items(known)
    return model.train()


def _reference_clipped_sum(model: BehaviourTransformer, batch, max_norm: float, clipped: UserClippedGradients) -> list[torch.Tensor]:
    """The definition, user by user: each window's loss, its gradient (the text projection's kept in
    its principal span), clipped, summed."""
    parameters = clipped.parameters
    total = [torch.zeros_like(p) for p in parameters]
    loss_fn = FullSoftmaxLoss()
    for row in range(len(batch.items)):
        inputs, targets = next_item_targets(batch.items[row:row + 1])
        hidden = model(inputs, batch.event_types[row:row + 1, :-1], batch.timestamps[row:row + 1, :-1])
        grads = torch.autograd.grad(loss_fn(model, hidden, targets), parameters, allow_unused=True)
        grads = clipped.release([torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)])
        scale = min(1.0, max_norm / float(torch.sqrt(sum((g**2).sum() for g in grads))))
        for acc, g in zip(total, grads):
            acc += g * scale
    return total


@pytest.mark.parametrize("features", [True, False])  # items by public features; by ids alone
@pytest.mark.parametrize("max_norm", [1e6, 0.05])  # no clipping at all; every user clipped
def test_the_batched_per_user_clipped_gradient_equals_the_user_by_user_definition(max_norm, features):
    model = _featured_model() if features else _featured_model(use_price=False, use_attributes=False, use_text=False)
    rng = np.random.default_rng(0)
    lists = [[int(i) for i in rng.integers(2, N_ITEMS - 3, size=int(rng.integers(2, 12)))] for _ in range(9)]
    lists[0] = [1, 5, 5, 7]  # an unknown-item input and a repeated item
    plain = SequenceArrays.from_lists(lists)
    n_events = len(plain.items)
    sequences = SequenceArrays(plain.offsets, plain.items, rng.integers(2, 4, n_events).astype(np.int8),
                               np.cumsum(rng.integers(1, 10**5, n_events)))
    batch = gather_windows(sequences, sequences.offsets[:-1], sequences.offsets[1:])
    clipped = UserClippedGradients(model, max_norm)
    fast, losses = clipped(batch)
    clipped.close()
    reference = _reference_clipped_sum(model, batch, max_norm, clipped)
    assert len(losses) == len(lists) and len(fast) == len(clipped.parameters)
    for got, want in zip(fast, reference):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    ids = model.item_encoder.id_embedding.weight
    assert ids.requires_grad is not features  # with public item features, no id vector is trained
    # Which items were trained on is not released: with ids, every catalog item counts as known.
    assert float(model.item_encoder.id_known[2:].mean()) == (0.0 if features else 1.0)


def test_a_model_the_private_gradient_does_not_cover_is_refused_with_the_key_to_change():
    with pytest.raises(ConfigError, match="model.loss"):
        UserClippedGradients(_featured_model(loss="sampled"), 1.0)


def test_each_sampled_user_contributes_exactly_one_of_their_windows():
    windows = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5])]
    rows = one_window_each(windows, np.array([0, 2]), np.random.default_rng(0))
    assert len(rows) == 2 and rows[0] in windows[0] and rows[1] in windows[2]


def test_the_private_gradient_carries_gaussian_noise_of_the_planned_size():
    generator = torch.Generator().manual_seed(0)
    (noisy,) = noisy_mean([torch.zeros(200_000)], PLAN, n_users=1000, generator=generator)
    expected_std = PLAN.noise_multiplier * PLAN.max_grad_norm / (PLAN.sample_rate * 1000)
    assert float(noisy.std()) == pytest.approx(expected_std, rel=0.02) and abs(float(noisy.mean())) < expected_std / 50


def test_users_are_poisson_sampled():
    counts = [len(users) for users in sampled_users(10_000, 0.05, 50, np.random.default_rng(0))]
    assert np.mean(counts) == pytest.approx(500, rel=0.05) and len(set(counts)) > 1


def test_the_noise_multiplier_grows_as_epsilon_shrinks():
    loose, tight = (plan_dp(eps, None, 10_000, 256, 5, 1.0) for eps in (8.0, 1.0))
    assert tight.noise_multiplier > loose.noise_multiplier > 0 and loose.delta == 1e-4
    with pytest.raises(ConfigError, match="two users"):
        plan_dp(3.0, None, 1, 1, 1, 1.0)


def _fit_private(seed: int, epsilon: float = 8.0):
    torch.manual_seed(0)
    model = BehaviourTransformer(model_config(), N_ITEMS)
    train, valid, test = splits(cyclic_sequences())
    config = train_config(epochs=4, dp_epsilon=epsilon, dp_users_per_step=40, seed=seed, lr=1e-2)
    return model, Trainer(model, config).fit(train, valid), test


def test_private_training_spends_at_most_its_epsilon_and_keeps_the_last_epoch():
    model, trainer, test = _fit_private(seed=0)
    privacy = trainer.privacy_
    assert privacy["unit"] == "user" and privacy["noise_multiplier"] > 0.5
    assert 0 < privacy["epsilon_spent"] <= privacy["target_epsilon"] * 1.001 and privacy["epochs"] == 4
    assert len(trainer.history_) == 4  # no early stop on validation
    assert validation_metrics(model, test)["hr@10"] > 10 / (N_ITEMS - 2)  # it still learns something


def test_a_private_run_is_not_resumed(tmp_path):
    torch.manual_seed(0)
    train, valid, _ = splits(cyclic_sequences())
    config = train_config(epochs=1, dp_epsilon=8.0, dp_users_per_step=40)
    Trainer(BehaviourTransformer(model_config(), N_ITEMS), config, checkpoint_path=tmp_path / "run.pt").fit(train, valid)
    with pytest.raises(ConfigError, match="cannot be resumed"):
        Trainer(BehaviourTransformer(model_config(), N_ITEMS), config, checkpoint_path=tmp_path / "run.pt").fit(train, valid, resume=True)


def test_the_noise_is_fresh_even_when_the_seed_is_the_same():
    # A seed anyone can read from the config must not let them replay the noise or the sampling.
    first, _, _ = _fit_private(seed=1)
    again, _, _ = _fit_private(seed=1)
    weights = [dict(m.state_dict()) for m in (first, again)]
    assert not all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_private_shopformer_counts_nothing_outside_the_private_gradients(tmp_path):
    from shopformer import Shopformer
    from shopformer.data.ingest import ingest_files
    from shopformer.data.prepared import PrepareConfig, prepare
    from shopformer.data.synth import DemoShopConfig, generate_demo_shop

    files = generate_demo_shop(tmp_path / "shop", DemoShopConfig(n_users=80, seed=2))
    prepared = prepare(ingest_files(files.events, files.catalog).dataset, PrepareConfig())
    model = Shopformer(model={"dim": 16, "layers": 1, "use_text": False},
                       train={"epochs": 1, "progress": False, "num_threads": 1, "dp_epsilon": 8.0, "dp_users_per_step": 40})
    model.fit(prepared).save(tmp_path / "bundle")
    loaded = Shopformer.load(tmp_path / "bundle")
    summary = loaded.training_summary
    assert summary["privacy"]["epsilon_spent"] <= 8.0 * 1.001 and summary["privacy"]["unit"] == "user"
    assert summary["prior_weights"] == {"transitions": 0.0, "neighbours": 0.0}
    fallback = loaded.recommend(users=["never-seen"], k=5)
    assert fallback["source"].to_list() == ["popular"] * 5 and fallback["score"].n_unique() == 1  # a flat fallback
