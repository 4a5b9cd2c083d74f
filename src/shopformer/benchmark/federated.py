"""Federated benchmark: shops that train together through Flower against pooled and shop-alone training.

Two settings, each on the leave-one-out split, test NDCG@10 / HR@10 per shop (history removed, the
behaviour Transformer's own scores in every mode):

* one catalog, users split between shops of unequal size (`split_shops`);
* several catalogs (`catalog_shops`), whose items meet only through their text embeddings; pooled
  training there is one model over the union of the catalogs, ranked within each shop's catalog.

Every mode starts from the same initial weights; pooled and shop-alone training early-stop on
validation; federated training runs a fixed number of FedAvg rounds of one local epoch.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from shopformer.benchmark.privacy import model_scorer, protocol_prepared
from shopformer.data.prepared import PreparedDataset
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate import evaluate_next_item, leave_one_out_targets
from shopformer.models.transformer import BehaviourTransformer
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, versions
from shopformer.train.config import TrainConfig
from shopformer.train.federated import FederatedShop, run_federated
from shopformer.train.trainer import Trainer

__all__ = ["SHOP_SHARES", "catalog_shops", "split_shops"]

logger = logging.getLogger(__name__)

#: Users' shares of the shops in the one-catalog setting: unequal, as real shops are.
SHOP_SHARES = (0.35, 0.25, 0.18, 0.13, 0.09)


def _test_metrics(model: BehaviourTransformer, arrays: SequenceArrays, allowed: torch.Tensor | None = None) -> dict[str, float]:
    histories, targets = leave_one_out_targets(arrays, "test")
    scores = evaluate_next_item(model_scorer(model, allowed), histories, targets, model.n_items, filter_seen=True, ks=(10,), coverage=False)
    return {"hr@10": round(scores["hr@10"], 5), "ndcg@10": round(scores["ndcg@10"], 5), "users": int(len(targets))}


def _train_alone(model: BehaviourTransformer, arrays: SequenceArrays, train: dict) -> tuple[BehaviourTransformer, float, int]:
    started, epochs = time.perf_counter(), []
    Trainer(model, TrainConfig(**(train | {"progress": False})), callbacks=[epochs.append]).fit(arrays.drop_last(2), arrays.drop_last(1))
    return model, time.perf_counter() - started, len(epochs)


def _federate(shops: list[FederatedShop], train: dict, rounds: int, same_catalog: bool) -> tuple[list[dict], float]:
    local = TrainConfig(**(train | {"epochs": 1, "warmup_steps": 0, "schedule": "constant", "progress": False}))
    started = time.perf_counter()
    result = run_federated(shops, local, rounds=rounds, same_catalog=same_catalog)
    return result.rounds, time.perf_counter() - started


def split_shops(dataset: Dataset, *, shares: Sequence[float] = SHOP_SHARES, rounds: int = 20, model: dict | None = None,
                train: dict | None = None, seed: int = 0) -> dict[str, Any]:
    """One catalog, users split at random into shops of `shares`: pooled vs alone vs federated."""
    prepared = protocol_prepared(dataset)
    train = train or {}
    start = Shopformer(model=model or {}, train=train).build_model(prepared)
    order = np.random.default_rng(seed).permutation(len(prepared.sequences.users))
    bounds = np.round(np.cumsum([0, *shares]) / sum(shares) * len(order)).astype(int)
    parts = [prepared.for_users(order[a:b]).arrays() for a, b in zip(bounds[:-1], bounds[1:])]
    names = [f"shop-{i + 1}" for i in range(len(parts))]
    pooled, pooled_seconds, pooled_epochs = _train_alone(copy.deepcopy(start), prepared.arrays(), train)
    rows = {name: {"users": int(len(part.lengths)), "pooled": _test_metrics(pooled, part)} for name, part in zip(names, parts)}
    for name, part in zip(names, parts):
        alone, seconds, epochs = _train_alone(copy.deepcopy(start), part, train)
        rows[name]["alone"] = _test_metrics(alone, part) | {"train_seconds": round(seconds, 1), "epochs": epochs}
    shops = [FederatedShop(name, copy.deepcopy(start), part.drop_last(2), part.drop_last(1)) for name, part in zip(names, parts)]
    curve, seconds = _federate(shops, train, rounds, same_catalog=True)
    for shop, part in zip(shops, parts):
        rows[shop.name]["federated"] = _test_metrics(shop.model, part)
    summary = _summary(rows, names)
    return {"setting": "one catalog, users split into shops", "dataset": dataset.name, "shares": list(shares), "rounds": rounds,
            "shops": rows, "summary": summary, "federated_curve": curve,
            "seconds": {"pooled": round(pooled_seconds, 1), "pooled_epochs": pooled_epochs, "federated": round(seconds, 1)},
            "machine": machine_info(), "versions": versions()}


def catalog_shops(datasets: Sequence[Dataset], *, rounds: int = 10, model: dict | None = None,
                  train: dict | None = None) -> dict[str, Any]:
    """Shops with their own catalogs, sharing a text-based item space: pooled vs alone vs federated."""
    train = train or {}
    prepared = [protocol_prepared(d) for d in datasets]
    names = [d.name for d in datasets]
    union = protocol_prepared(_union(datasets))
    pooled = Shopformer(model=model or {}, train=train).build_model(union)
    pooled, pooled_seconds, pooled_epochs = _train_alone(pooled, union.arrays(), train)
    rows, shops = {}, []
    for name, shop in zip(names, prepared):
        start = Shopformer(model=model or {}, train=train).build_model(shop)
        _align_shared(start, shops[0].model if shops else None)
        arrays = shop.arrays()
        alone, seconds, epochs = _train_alone(copy.deepcopy(start), arrays, train)
        rows[name] = {"users": int(len(arrays.lengths)), "items": len(shop.item_encoder.classes),
                      "pooled": _pooled_metrics(pooled, union, name),
                      "alone": _test_metrics(alone, arrays) | {"train_seconds": round(seconds, 1), "epochs": epochs}}
        shops.append(FederatedShop(name, start, arrays.drop_last(2), arrays.drop_last(1)))
    curve, seconds = _federate(shops, train, rounds, same_catalog=False)
    for shop, data in zip(shops, prepared):
        rows[shop.name]["federated"] = _test_metrics(shop.model, data.arrays())
    return {"setting": "one shop per catalog, items shared through their text embeddings", "rounds": rounds,
            "shops": rows, "summary": _summary(rows, names), "federated_curve": curve,
            "seconds": {"pooled": round(pooled_seconds, 1), "pooled_epochs": pooled_epochs, "federated": round(seconds, 1)},
            "machine": machine_info(), "versions": versions()}


def _align_shared(model: BehaviourTransformer, reference: BehaviourTransformer | None) -> None:
    """Gives every shop the first shop's initial shared weights (the server's starting point)."""
    if reference is None:
        return
    mine = dict(model.named_parameters())
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name in mine and mine[name].shape == parameter.shape and not name.startswith("item_encoder.id_embedding"):
                mine[name].copy_(parameter)


def _union(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset of all shops, user and item ids prefixed by the shop's name."""
    def prefixed(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> pl.DataFrame:
        return frame.with_columns([(pl.lit(f"{name}/") + pl.col(c)).alias(c) for c in columns if c in frame.columns])
    events = pl.concat([prefixed(d.events.frame, d.name, ("user_id", "item_id")) for d in datasets], how="diagonal_relaxed")
    catalogs = [prefixed(d.catalog.frame, d.name, ("item_id",)) for d in datasets if d.catalog is not None]
    catalog = Catalog(pl.concat(catalogs, how="diagonal_relaxed")) if catalogs else None
    resolution = datasets[0].events.time_resolution
    return Dataset("+".join(d.name for d in datasets), EventLog(events, resolution), catalog)


def _pooled_metrics(model: BehaviourTransformer, union: PreparedDataset, shop: str) -> dict[str, float]:
    user_ids = union.user_encoder.inverse_transform(union.sequences.users)
    rows = np.flatnonzero(user_ids.str.starts_with(f"{shop}/").to_numpy())
    item_ids = union.item_encoder.inverse_transform(np.arange(union.item_encoder.n_codes))
    allowed = torch.from_numpy(item_ids.str.starts_with(f"{shop}/").fill_null(False).to_numpy())
    return _test_metrics(model, union.for_users(rows).arrays(), allowed)


def _summary(rows: dict, names: list[str]) -> dict[str, Any]:
    def mean(mode: str) -> float:
        return round(float(np.mean([rows[n][mode]["ndcg@10"] for n in names])), 5)
    smallest = min(names, key=lambda n: rows[n]["users"])
    pooled, federated = mean("pooled"), mean("federated")
    return {"mean_ndcg@10": {"pooled": pooled, "alone": mean("alone"), "federated": federated},
            "federated_gap_to_pooled": round(1 - federated / pooled, 4) if pooled else None,
            "smallest_shop": smallest,
            "smallest_shop_federated_vs_alone": round(rows[smallest]["federated"]["ndcg@10"] - rows[smallest]["alone"]["ndcg@10"], 5)}
