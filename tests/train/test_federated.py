"""Federated training with Flower: shops exchange weights only, and learn from each other."""

from __future__ import annotations

import pytest
import torch

from shopformer.errors import ConfigError
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train.federated import FederatedShop, run_federated, shared_parameter_names
from shopformer.train.trainer import validation_metrics
from tests.train.test_trainer import N_ITEMS, cyclic_sequences, model_config, splits, train_config

pytest.importorskip("flwr", reason="federated training needs the privacy extra (flwr)")


def _shops(n: int = 2) -> list[FederatedShop]:
    shops = []
    for index in range(n):
        torch.manual_seed(index)
        train, valid, test = splits(cyclic_sequences(n_users=120, seed=index))
        shop = FederatedShop(f"shop-{index}", BehaviourTransformer(model_config(), N_ITEMS), train, valid)
        shop.test = test
        shops.append(shop)
    return shops


def test_shops_of_one_catalog_end_with_the_same_weights_and_learn_the_pattern():
    shops = _shops()
    result = run_federated(shops, train_config(epochs=1, warmup_steps=0, schedule="constant", lr=1e-2), rounds=4, same_catalog=True)
    assert [row["round"] for row in result.rounds] == [0, 1, 2, 3, 4]
    first, last = result.rounds[0]["valid_ndcg@10"], result.rounds[-1]["valid_ndcg@10"]
    assert all(last[name] > first[name] + 0.1 for name in first)  # training happened on every shop
    a, b = (dict(s.model.named_parameters()) for s in shops)
    assert all(torch.equal(a[name], b[name]) for name in result.shared) and len(result.shared) == len(a)
    assert validation_metrics(shops[0].model, shops[0].test)["hr@10"] > 10 / (N_ITEMS - 2)


def test_shops_of_different_catalogs_keep_their_item_embeddings():
    shops = _shops()
    result = run_federated(shops, train_config(epochs=1, warmup_steps=0, schedule="constant"), rounds=1, same_catalog=False)
    assert not any(name.startswith("item_encoder.id_embedding") for name in result.shared)
    a, b = (dict(s.model.named_parameters()) for s in shops)
    assert not torch.equal(a["item_encoder.id_embedding.weight"], b["item_encoder.id_embedding.weight"])
    assert all(torch.equal(a[name], b[name]) for name in result.shared)


def test_shops_with_different_model_layouts_are_refused():
    shops = _shops()
    shops[1].model = BehaviourTransformer(model_config(layers=2), N_ITEMS)
    with pytest.raises(ConfigError, match="another model layout"):
        shared_parameter_names(shops, same_catalog=True)


def test_a_shop_that_fails_stops_the_run_instead_of_being_averaged_away(monkeypatch):
    import shopformer.train.federated as federated

    class FailingTrainer(federated.Trainer):
        def fit(self, train, valid=None, *, resume=False):
            raise RuntimeError("shop down")

    monkeypatch.setattr(federated, "Trainer", FailingTrainer)
    with pytest.raises(RuntimeError, match="shop down"):
        run_federated(_shops(), train_config(epochs=1), rounds=1, same_catalog=True)


def test_private_federated_training_is_refused_until_its_rounds_are_accounted():
    with pytest.raises(ConfigError, match="dp_epsilon"):
        run_federated(_shops(), train_config(epochs=1, dp_epsilon=3.0), rounds=1, same_catalog=True)
