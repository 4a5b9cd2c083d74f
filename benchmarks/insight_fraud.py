"""Bots and fraud benchmark:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/insight_fraud.py [--demo-seeds 0,1,2] [--resamples 200]

Part 1, the demo shop: `score_users` on the event log of demo shops (the default shop under each seed, and
one with 10,000 users) against their ground-truth bots and fraudsters: ROC-AUC and the flagged users'
precision and recall, for the default score and each detector alone.
Part 2, the public e-commerce fraud data (../shared/datasets/fraud-ecommerce, skipped when absent):
`shopformer benchmark fraud`'s protocol, the time-ordered 70/10/20 split, test ROC-AUC and precision@1%
of IsolationForest, ECOD, COPOD, our unsupervised score, LightGBM on the classic features and our
supervised model. Writes benchmarks/results/insight_fraud.json with the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from shopformer.benchmark.fraud import TOP_SHARE, detector_versions, run_demo_shop, run_fraud
from shopformer.data.synth import DemoShopConfig
from shopformer.runtime import machine_info, torch_threads

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FRAUD = DATASETS / "fraud-ecommerce"
RESULTS = Path(__file__).resolve().parent / "results"


def demo_shops(seeds: list[int]) -> list[dict]:
    configs = [DemoShopConfig(seed=seed) for seed in seeds] + [DemoShopConfig(seed=seeds[0], n_users=10_000)]
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for k, config in enumerate(configs):
            runs.append(run_demo_shop(Path(work) / str(k), config=config))
    return runs


def _print_demo(runs: list[dict]) -> None:
    print(f"{'shop':>19} {'bad/users':>10} {'method':>8} {'AUC':>7} {'AUC bots':>9} {'AUC fraud':>9} {'flagged':>7} {'precision':>9}")
    for run in runs:
        shop = f"seed {run['shop']['seed']}, {run['users']} users"
        for method, m in run["methods"].items():
            print(f"{shop:>19} {run['bots'] + run['fraudsters']:>4}/{run['users']:<5} {method:>8} {m['roc_auc']:>7.4f} "
                  f"{m['roc_auc_bots']:>9.4f} {m['roc_auc_fraudsters']:>9.4f} {m['flagged']:>7} {m['precision_at_flagged']:>9.4f}")


def _print_fraud(document: dict) -> None:
    top = f"precision_at_{TOP_SHARE:.0%}"
    print(f"\nfraud-ecommerce, test = last 20% by purchase time ({document['split']['test']['rows']} accounts, "
          f"{document['split']['test']['fraud_rate']:.1%} fraud); signal bound {document['signal_bound_auc']}")
    print(f"{'method':>20} {'test AUC':>9} {'95% CI':>17} {'prec@1%':>8} {'val AUC':>8} {'all-rows AUC':>12}")
    for name, row in document["methods"].items():
        test, everyone = row["test"], document["all_rows_unsupervised"].get(name, {})
        ci = "[{:.4f}, {:.4f}]".format(*test["roc_auc_ci95"])
        print(f"{name:>20} {test['roc_auc']:>9.4f} {ci:>17} {test[top]:>8.4f} {row['validation']['roc_auc']:>8.4f} "
              f"{everyone.get('roc_auc', float('nan')):>12.4f}")
    print(json.dumps(document["margins"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-seeds", default="0,1,2", help="comma-separated demo-shop seeds")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap draws of the fraud test intervals")
    args = parser.parse_args()
    with torch_threads(1):
        demo = demo_shops([int(s) for s in args.demo_seeds.split(",")])
        _print_demo(demo)
        fraud = None
        if (FRAUD / "fraud_data.csv").exists():
            fraud = run_fraud(FRAUD / "fraud_data.csv", ip_countries=FRAUD / "IpAddress_to_Country.csv", resamples=args.resamples)
            _print_fraud(fraud)
        else:
            print(f"\nfraud-ecommerce not found at {FRAUD}: part 2 skipped")
    document = {"demo_shop": demo, "fraud_ecommerce": fraud, "machine": machine_info(), "versions": detector_versions()}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "insight_fraud.json"
    out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
