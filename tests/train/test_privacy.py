"""User-level DP-SGD: clipping per user, the noise really is there, and the privacy spent is accounted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.errors import ConfigError
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train import Trainer
from shopformer.train.privacy import DPPlan, clip_gradient, noisy_mean, plan_dp, sampled_users
from shopformer.train.trainer import validation_metrics
from tests.train.test_trainer import N_ITEMS, cyclic_sequences, model_config, splits, train_config

PLAN = DPPlan(epsilon=3.0, delta=1e-3, noise_multiplier=1.5, max_grad_norm=2.0, sample_rate=0.1, steps=10)


def test_a_users_gradient_is_clipped_to_the_norm():
    parameter = torch.nn.Parameter(torch.zeros(4))
    parameter.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5
    (clipped,) = clip_gradient([parameter], max_norm=2.0)
    assert float(clipped.norm()) == pytest.approx(2.0)
    parameter.grad = torch.tensor([0.3, 0.4, 0.0, 0.0])  # already small: unchanged
    assert torch.equal(clip_gradient([parameter], max_norm=2.0)[0], parameter.grad)


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


def test_two_private_runs_differ_only_by_their_noise():
    first, _, _ = _fit_private(seed=1)
    again, _, _ = _fit_private(seed=1)
    other, _, _ = _fit_private(seed=2)
    weights = [dict(m.state_dict()) for m in (first, again, other)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # the same seed: the same noise
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


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
