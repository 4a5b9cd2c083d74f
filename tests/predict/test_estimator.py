"""The `Shopformer` estimator on the real Amazon Scientific data: fit, recommend, save/load, evaluate."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest
import torch

from shopformer.data.formats import read_dataset
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Catalog, Dataset
from shopformer.errors import ConfigError, DataError, ShopformerError
from shopformer.models.prior import WEIGHT_GRID
from shopformer.predict.estimator import Shopformer
from tests.conftest import dataset_path

FAST_TRAIN = {"epochs": 3, "lr": 3e-3, "progress": False, "seed": 1}


@pytest.fixture(scope="module")
def prepared():
    dataset = read_dataset("recbole", dataset_path("amazon-scientific"))
    return prepare(dataset, PrepareConfig(dedupe_consecutive=False))


@pytest.fixture(scope="module")
def fitted(prepared):
    return Shopformer(model={"use_attributes": True}, train=FAST_TRAIN).fit(prepared)


def _users(prepared, n=50):
    return prepared.user_encoder.classes_[:n].to_list()


def _history(prepared, user: str) -> set[str]:
    return set(prepared.events.frame.filter(pl.col("user_id") == user)["item_id"].to_list())


def test_fit_learns_far_beyond_chance(fitted, prepared):
    best = max(m["valid_hr@10"] for m in fitted.history_)
    chance = 10 / len(prepared.item_encoder.classes_)
    assert best > 10 * chance
    assert fitted.model_config_.use_attributes and not fitted.model_config_.use_time_gaps  # order-only log


def test_recommend_table_is_tidy_ranked_and_skips_seen_items(fitted, prepared):
    users = _users(prepared)
    table = fitted.recommend(users=users, k=7)
    assert table.columns == ["user_id", "item_id", "score", "rank", "source"]
    assert table.height == 7 * len(users)
    for user, rows in table.group_by("user_id", maintain_order=True):
        assert rows["rank"].to_list() == list(range(1, 8))
        assert rows["score"].is_sorted(descending=True)
        assert not set(rows["item_id"]) & _history(prepared, user[0])
    assert set(table["source"]) == {"model"}


def test_recommend_can_keep_seen_items_and_restrict_candidates(fitted, prepared):
    user = _users(prepared, 1)
    seen = sorted(_history(prepared, user[0]))
    kept = fitted.recommend(users=user, k=len(seen), filter_seen=False, items=seen)
    assert set(kept["item_id"]) == set(seen)
    assert fitted.recommend(users=user, k=5, items=seen).height == 0  # every candidate was seen


def test_unknown_users_and_sessions_fall_back_to_popular_items(fitted, prepared):
    table = fitted.recommend(users=["no-such-user"], k=3)
    assert table["source"].to_list() == ["popular"] * 3
    known_item = prepared.item_encoder.classes_[0]
    sessions = fitted.recommend(sequences=[["no-such-item"], [known_item]], k=3)
    assert sessions.filter(pl.col("user_id") == "0")["source"].to_list() == ["popular"] * 3
    assert sessions.filter(pl.col("user_id") == "1")["source"].to_list() == ["model"] * 3
    assert known_item not in sessions.filter(pl.col("user_id") == "1")["item_id"].to_list()


def test_save_and_load_round_trip_gives_identical_recommendations(fitted, prepared, tmp_path):
    fitted.save(tmp_path / "bundle")
    assert not list((tmp_path / "bundle").glob("*.pkl"))
    loaded = Shopformer.load(tmp_path / "bundle")
    users = _users(prepared, 20)
    assert loaded.recommend(users=users, k=10).equals(fitted.recommend(users=users, k=10))
    assert loaded.model_config_ == fitted.model_config_
    assert loaded.prior_.weight == fitted.prior_.weight in WEIGHT_GRID


def test_evaluate_counts_unknown_targets_as_misses(fitted, prepared):
    metrics = fitted.evaluate(prepared)
    assert metrics["n_users"] == len(prepared.sequences) and metrics["unknown_targets"] == 0
    filtered = fitted.evaluate(prepared, filter_seen=True)
    assert filtered["hr@10"] >= metrics["hr@10"]  # removing candidates never pushes a target down
    renamed = prepared.events.with_frame(prepared.events.frame.with_columns(pl.lit("new-item").alias("item_id")))
    with pytest.raises(ShopformerError, match="known to the model"):
        fitted.evaluate(Dataset("renamed", renamed, None))


def test_bad_use_gives_clear_errors(fitted, tmp_path):
    with pytest.raises(ShopformerError, match="not fitted"):
        Shopformer().recommend(users=["u"])
    with pytest.raises(ConfigError, match="layerz"):
        Shopformer(model={"layerz": 3})
    with pytest.raises(ConfigError, match="exactly one"):
        fitted.recommend(users=["a"], sequences=[["b"]])
    with pytest.raises(ConfigError, match="list of item-id lists"):
        fitted.recommend(sequences=["sku-1", "sku-2"])
    with pytest.raises(DataError, match="bundle"):
        Shopformer.load(tmp_path)


def test_scores_do_not_depend_on_batch_composition(fitted, prepared):
    users = _users(prepared, 30)
    together = fitted.recommend(users=users, k=5)
    alone = pl.concat([fitted.recommend(users=[u], k=5) for u in users[:5]])
    assert np.allclose(together.head(25)["score"].to_numpy(), alone["score"].to_numpy(), atol=1e-4)


def test_cold_start_items_are_recommendable_through_their_side_features(fitted, prepared):
    known = prepared.catalog.frame.head(3)
    twins = known.with_columns(("new-" + pl.col("item_id")).alias("item_id"))
    model = copy.deepcopy(fitted).add_items(Catalog(twins))
    new_ids = twins["item_id"].to_list()
    table = model.recommend(users=_users(prepared, 5), k=3, items=new_ids)
    assert table.height == 15 and set(table["item_id"]) <= set(new_ids)
    assert table["score"].is_finite().all() and set(table["source"]) == {"model"}
    # A twin shares its original's attributes, so it is closer to it than to an unrelated new item.
    vectors = model.model_.item_table().detach()
    codes = model.item_features_.codes([known["item_id"][0], new_ids[0], new_ids[1]])
    original, twin, other = vectors[torch.from_numpy(codes.astype(np.int64))]
    assert torch.cosine_similarity(original, twin, 0) > torch.cosine_similarity(original, other, 0)
    assert model.item_features_.n_items == fitted.item_features_.n_items + 3
