"""Privacy benchmarks on the shared Amazon datasets (leave-one-out, full ranking):

    .venv/bin/python benchmarks/privacy.py dp            # DP table on Beauty: no DP, epsilon 8 / 3 / 1
    .venv/bin/python benchmarks/privacy.py membership    # loss-threshold attack AUC, no DP and epsilon 3
    .venv/bin/python benchmarks/privacy.py federated-split     # Beauty split into 5 shops (Flower FedAvg)
    .venv/bin/python benchmarks/privacy.py federated-catalogs  # Beauty + Sports + Scientific as 3 shops
    .venv/bin/python benchmarks/privacy.py speed         # seconds per epoch without and with DP, one after the other

Each part prints its table and writes benchmarks/results/privacy_<part>.json (with machine info).
`--threads N` sets torch threads (give each of two side-by-side runs one); `--max-minutes M` caps
every non-private training run.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from shopformer.benchmark.federated import catalog_shops, split_shops
from shopformer.benchmark.privacy import run_dp_table, run_epoch_timing, run_membership_attack
from shopformer.data.formats import read_dataset

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"


def _s3rec(folder: str, stem: str):
    root = DATASETS / folder
    return read_dataset("s3rec", root / f"{stem}.txt", item_attributes_path=root / f"{stem}_item2attributes.json",
                        datamaps_path=root / "datamaps.json", item_titles_path=root / "item_title_prefix.txt")


def beauty():
    return _s3rec("amazon-beauty", "Beauty")


def _print_dp(document: dict) -> None:
    print(f"{'epsilon':>8} {'HR@10':>8} {'NDCG@10':>8} {'HR@10 f':>8} {'NDCG@10 f':>9} {'share':>6} {'s/epoch':>8} {'ratio':>6}")
    for row in document["dp_table"]:
        t = row["test"]
        print(f"{row['epsilon'] or 'none':>8} {t['hr@10']:>8.4f} {t['ndcg@10']:>8.4f} {t['hr@10_seen_filtered']:>8.4f} "
              f"{t['ndcg@10_seen_filtered']:>9.4f} {row.get('ndcg@10_share_of_non_dp', 1.0):>6.2f} {row['seconds_per_epoch']:>8.1f} "
              f"{row.get('epoch_time_ratio', 1.0):>6.2f}")


def _print_membership(document: dict) -> None:
    for row in document["membership"]:
        print(f"epsilon {row['epsilon'] or 'none'}: attack AUC {row['attack']['auc']:.3f}, advantage {row['attack']['advantage']:.3f}, "
              f"members' test NDCG@10 {row['members_test']['ndcg@10_seen_filtered']:.4f}")


def _print_federated(document: dict) -> None:
    print(f"{'shop':>28} {'users':>7} {'pooled':>8} {'alone':>8} {'federated':>9}")
    for name, row in document["shops"].items():
        ndcg = [row[mode]["ndcg@10"] for mode in ("pooled", "alone", "federated")]
        print(f"{name:>28} {row['users']:>7} {ndcg[0]:>8.4f} {ndcg[1]:>8.4f} {ndcg[2]:>9.4f}")
    print(json.dumps(document["summary"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["dp", "membership", "federated-split", "federated-catalogs", "speed"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=10.0, help="budget of every non-private training run")
    parser.add_argument("--rounds", type=int, default=None, help="federated rounds (default 20 split, 10 catalogs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train = {"progress": False, "max_minutes": args.max_minutes} | ({"num_threads": args.threads} if args.threads else {})
    dp = {"num_threads": args.threads} if args.threads else {}
    if args.part == "dp":
        document, show = run_dp_table(beauty(), train=train, dp=dp | {"max_minutes": None}), _print_dp
    elif args.part == "membership":
        document, show = run_membership_attack(beauty(), train=train, dp=dp | {"max_minutes": None}), _print_membership
    elif args.part == "speed":
        document, show = run_epoch_timing(beauty(), train=train), lambda d: print(json.dumps(d["timing"]))
    elif args.part == "federated-split":
        document, show = split_shops(beauty(), train=train, rounds=args.rounds or 20), _print_federated
    else:
        shops = [beauty(), _s3rec("amazon-sports", "Sports_and_Outdoors"), read_dataset("recbole", DATASETS / "amazon-scientific")]
        document, show = catalog_shops(shops, train=train, rounds=args.rounds or 10), _print_federated
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"privacy_{args.part.replace('-', '_')}.json"
    out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    show(document)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
