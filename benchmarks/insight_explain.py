"""Explanation benchmark: faithfulness (deletion / insertion curves) and latency of occlusion, Banzhaf
and integrated gradients, against random and most-recent-first orderings.

    .venv/bin/python benchmarks/insight_explain.py            # Amazon Beauty and the demo shop
    .venv/bin/python benchmarks/insight_explain.py beauty     # one of them (results of the other are kept)

Beauty: the leave-one-out split (test item held out), a model trained for `--max-minutes` on one
thread, the top recommendation of `--users` sampled users explained. Demo shop: the same for the
next item, plus the task models of `--tasks` (the default hybrid on the same behaviour model).
Prints a table and writes benchmarks/results/insight_explain.json (machine, versions, protocol).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import torch

from shopformer.benchmark.explain import ORDERINGS, benchmark_document, sample_users, users_with_task_events, with_machine
from shopformer.benchmark.privacy import protocol_prepared
from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer
from shopformer.predict.tasks import TaskPredictor
from shopformer.tasks.shared import SharedBehaviour

BEAUTY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty"
RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "insight_explain.json"
#: Without text embeddings: the benchmark measures attribution, and embedding 12k titles would eat the budget.
MODEL = {"use_text": False}


def _train(minutes: float) -> dict:
    return {"max_minutes": minutes, "num_threads": 1, "progress": False, "seed": 0}


def run_beauty(args: argparse.Namespace) -> dict:
    dataset = read_dataset("s3rec", BEAUTY / "Beauty.txt", item_attributes_path=BEAUTY / "Beauty_item2attributes.json",
                           datamaps_path=BEAUTY / "datamaps.json", item_titles_path=BEAUTY / "item_title_prefix.txt")
    model = Shopformer(model=MODEL, train=_train(args.max_minutes)).fit(protocol_prepared(dataset), exclude_last=1)
    users = sample_users(model, args.users, seed=args.seed)
    result = benchmark_document("amazon-beauty", model, users, catalog=dataset.catalog,
                                latency_users=args.latency_users, seed=args.seed)
    result["model"] = model.training_summary | {"history": None}
    return result


def run_demo(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        files = generate_demo_shop(Path(folder) / "shop", DemoShopConfig(n_users=args.demo_users, seed=args.seed))
        dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
    model = Shopformer(model=MODEL, train=_train(args.max_minutes)).fit(prepare(dataset, PrepareConfig()))
    tasks = tuple(t for t in args.tasks.split(",") if t)
    predictor = TaskPredictor.fit(dataset, tasks, shared=SharedBehaviour(model=model)) if tasks else None
    task_users = users_with_task_events(predictor, args.task_users, seed=args.seed) if predictor else []
    result = benchmark_document("demo-shop", model, sample_users(model, args.users, seed=args.seed),
                                catalog=dataset.catalog, predictor=predictor, tasks=tasks, task_users=task_users,
                                latency_users=args.latency_users, seed=args.seed)
    result["model"] = model.training_summary | {"history": None}
    result["task_models"] = {} if predictor is None else predictor.info
    result["demo_shop"] = {"n_users": args.demo_users, "seed": args.seed}
    return result


def _print(datasets: dict) -> None:
    print(f"{'dataset':<14} {'target':<10} {'ordering':<21} {'deletion':>8} {'vs rand':>8} {'vs rec':>7} "
          f"{'insertion':>9} {'p50 ms':>7} {'p95 ms':>7}")
    for name, result in datasets.items():
        for target in [t for t in result if isinstance(result[t], dict) and "occlusion" in result[t]]:
            for ordering in ORDERINGS:
                row = result[target][ordering]
                lat = result["latency"].get(target, {}).get(ordering, {})
                vs = (f"{row['deletion']['vs_random']:>+8.1%} {row['deletion']['vs_recency']:>+7.1%}"
                      if "vs_random" in row["deletion"] else f"{'':>8} {'':>7}")
                print(f"{name:<14} {target:<10} {ordering:<21} {row['deletion']['area']:>8.4f} {vs} "
                      f"{row['insertion']['area']:>9.4f} {lat.get('p50_ms', float('nan')):>7.1f} "
                      f"{lat.get('p95_ms', float('nan')):>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", nargs="?", choices=["all", "beauty", "demo"], default="all")
    parser.add_argument("--users", type=int, default=500, help="users whose top recommendation is explained")
    parser.add_argument("--task-users", type=int, default=150, help="users whose task predictions are explained")
    parser.add_argument("--latency-users", type=int, default=100, help="explain() calls timed per method")
    parser.add_argument("--max-minutes", type=float, default=4.0, help="training budget of each behaviour model")
    parser.add_argument("--demo-users", type=int, default=1000, help="users of the generated demo shop")
    parser.add_argument("--tasks", default="intent,churn", help="demo-shop tasks to explain, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    datasets = json.loads(OUT.read_text(encoding="utf-8"))["datasets"] if OUT.is_file() else {}
    if args.part in ("all", "beauty"):
        datasets["amazon-beauty"] = run_beauty(args)
    if args.part in ("all", "demo"):
        datasets["demo-shop"] = run_demo(args)
    RESULTS.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(with_machine(datasets), indent=1), encoding="utf-8")
    _print(datasets)
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
