"""The privacy and federated benchmarks run end to end on a small shop and report what they promise."""

from __future__ import annotations

import pytest

from shopformer.benchmark.federated import catalog_shops, split_shops
from shopformer.benchmark.privacy import run_dp_table, run_membership_attack
from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop

MODEL = {"dim": 16, "layers": 1, "use_text": False}
TRAIN = {"epochs": 2, "progress": False, "num_threads": 1}
DP = {"epochs": 1, "dp_users_per_step": 60, "num_threads": 1}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=240, seed=4))
    return ingest_files(files.events, files.catalog, name="small-shop").dataset


def test_the_dp_table_reports_every_epsilon_against_the_non_private_run(shop):
    document = run_dp_table(shop, epsilons=(8.0,), model=MODEL, train=TRAIN, dp=DP)
    plain, private = document["dp_table"]
    assert plain["epsilon"] is None and "ndcg@10_seen_filtered" in plain["test_model_only"]
    assert private["privacy"]["epsilon_spent"] <= 8.0 * 1.001 and private["epochs"] == 1
    assert {"ndcg@10_share_of_non_dp", "epoch_time_ratio"} <= set(private) and document["machine"]["cores_available"] >= 1


def test_the_membership_attack_compares_members_with_users_never_seen(shop):
    document = run_membership_attack(shop, epsilons=(None,), model=MODEL, train=TRAIN, dp=DP)
    (row,) = document["membership"]
    assert 0.0 <= row["attack"]["auc"] <= 1.0 and row["attack"]["members"] > 50 and row["attack"]["non_members"] > 50


def test_split_shops_compare_pooled_alone_and_federated_for_every_shop(shop):
    document = split_shops(shop, shares=(0.6, 0.4), rounds=2, model=MODEL, train=TRAIN)
    assert set(document["shops"]) == {"shop-1", "shop-2"} and [r["round"] for r in document["federated_curve"]] == [0, 1, 2]
    for row in document["shops"].values():
        assert {"pooled", "alone", "federated"} <= set(row)
    assert document["summary"]["smallest_shop"] == "shop-2"


def test_catalog_shops_rank_the_pooled_model_within_each_catalog(tmp_path, shop):
    files = generate_demo_shop(tmp_path / "other", DemoShopConfig(n_users=150, seed=9))
    other = ingest_files(files.events, files.catalog, name="other-shop").dataset
    document = catalog_shops([shop, other], rounds=1, model=MODEL, train=TRAIN)
    assert set(document["shops"]) == {"small-shop", "other-shop"}
    assert all(row["pooled"]["users"] == row["alone"]["users"] > 0 for row in document["shops"].values())


def test_epoch_timing_compares_both_modes_in_one_process(shop):
    from shopformer.benchmark.privacy import run_epoch_timing

    document = run_epoch_timing(shop, epochs=1, model=MODEL, train={"progress": False, "num_threads": 1, "dp_users_per_step": 60})
    timing = document["timing"]
    assert set(timing["median_epoch_seconds"]) == {"non_dp", "dp"} and timing["ratio"] > 0
