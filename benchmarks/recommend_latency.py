"""Inference speed: `Shopformer.recommend` for 1,000 known users over the 12,101 Amazon Beauty items.

    .venv/bin/python benchmarks/recommend_latency.py [--bundle DIR] [--repeats 7]

Without `--bundle` the script trains one epoch on Beauty first (the speed of `recommend` does not
depend on how well the weights are trained, only on the model's shape). Prints a table and writes
benchmarks/results/recommend_latency.json with the machine, the model shape and every timing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shopformer.data.formats import read_dataset
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, matmul_gflops, versions

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty"
RESULTS = Path(__file__).resolve().parent / "results"


def _model(bundle: Path | None) -> tuple[Shopformer, list[str]]:
    if bundle is not None:
        model = Shopformer.load(bundle)
        return model, model.user_encoder_.classes_.to_list()
    dataset = read_dataset("s3rec", DATA / "Beauty.txt", item_attributes_path=DATA / "Beauty_item2attributes.json",
                           datamaps_path=DATA / "datamaps.json", item_titles_path=DATA / "item_title_prefix.txt")
    prepared = prepare(dataset, PrepareConfig(dedupe_consecutive=False))
    model = Shopformer(train={"epochs": 1, "progress": False}).fit(prepared)
    return model, prepared.user_encoder.classes_.to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    model, all_users = _model(args.bundle)
    users = list(np.random.default_rng(0).choice(all_users, size=args.users, replace=False))
    rows = {}
    for label, kwargs in {"filter_seen": {"filter_seen": True}, "all items": {"filter_seen": False}}.items():
        model.recommend(users=users, k=10, **kwargs)  # warm-up: thread pool, item table cache
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            table = model.recommend(users=users, k=10, **kwargs)
            timings.append(time.perf_counter() - started)
        assert table.height == 10 * len(users)
        rows[label] = {"median_s": round(float(np.median(timings)), 4), "min_s": round(min(timings), 4), "timings_s": timings}
    result = {
        "benchmark": "recommend top-10 for known users, full catalog scoring",
        "users": len(users), "items": int(model.item_features_.n_items - 2), "threads": model.train_config.num_threads,
        "model": model.model_config_.model_dump(), "machine": machine_info() | {"matmul_gflops": round(matmul_gflops(), 1)},
        "versions": versions(), "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recommend_latency.json").write_text(json.dumps(result, indent=1))
    print("| case | users | items | median s | min s |\n|---|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {len(users)} | {result['items']} | {row['median_s']:.3f} | {row['min_s']:.3f} |")


if __name__ == "__main__":
    main()
