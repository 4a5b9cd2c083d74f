"""Batch scoring of every user of a 100k-user demo shop on each engine: local, Ray and Spark.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/scale_scoring.py --users 100000 --workers 2

Generates the demo shop (`shopformer.data.synth`) at `--users` users, prepares it and trains a small
ids-only model for one epoch into benchmarks/work/ (reused on the next run; the speed of scoring
depends on the model's shape, not on how well it is trained), then writes every user's top-k with
each engine side by side in this one run: the local engine on 1 torch thread and on `--workers`
threads, a local Ray and a local Spark with `--workers` workers of 1 torch thread each, `--rounds`
times in a rotating order (the medians are reported; the machine may be shared). Rows per second
are timed from the moment the engine is up (Ray started, Spark session created) to the end of the
checksum pass; the start-up is reported beside them. Every run must give the same checksum. Prints
a table and writes benchmarks/results/scale_scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyspark
import ray
import torch
from rich.console import Console
from rich.table import Table

from shopformer.data.codes import FIRST_CODE
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, versions
from shopformer.scale.batch import ScoreOptions, score_users
from shopformer.scale.ray_score import score_users_ray
from shopformer.scale.spark_score import score_users_spark

HERE = Path(__file__).resolve().parent
MODEL = {"use_text": False, "use_attributes": False, "use_price": False, "dim": 32, "layers": 1}


def build_bundle(work: Path, n_users: int, seed: int) -> dict[str, Any]:
    """The bundle of a `n_users` demo shop under `work` (trained once, then reused) and how it was made."""
    root = work / f"shop-{n_users}-seed{seed}"
    info_path = root / "bundle-info.json"
    if info_path.is_file():
        return json.loads(info_path.read_text()) | {"reused": True}
    started = time.perf_counter()
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=n_users, seed=seed))
    generated = time.perf_counter()
    prepared = prepare(ingest_files(files.events, files.catalog).dataset, PrepareConfig())
    model = Shopformer(model=MODEL, train={"epochs": 1, "progress": False, "seed": seed, "num_threads": 1}).fit(prepared)
    model.save(root / "bundle")
    info = {"bundle": str(root / "bundle"), "generator": f"DemoShopConfig(n_users={n_users}, seed={seed}) defaults otherwise",
            "events": len(prepared.events), "users": len(model.known_users()), "items": int(model.item_features.n_items - FIRST_CODE),
            "model": MODEL, "train": "1 epoch, 1 torch thread", "generate_s": round(generated - started, 1),
            "prepare_and_train_s": round(time.perf_counter() - generated, 1)}
    info_path.write_text(json.dumps(info, indent=1))
    return info | {"reused": False}


def run_engine(name: str, bundle: str, scratch: Path, workers: int, k: int, chunk: int) -> dict[str, Any]:
    """One scoring of every user with the engine configuration `name` (a key of `ENGINES`)."""
    engine, threads = ENGINES[name](workers)
    out = scratch / f"{engine}-{threads}.parquet"
    if engine == "local":
        model = Shopformer.load(bundle)
        model.train_config.num_threads = threads
        summary = score_users(model, out, k=k, chunk=chunk)
    else:
        score = score_users_ray if engine == "ray" else score_users_spark
        summary = score(bundle, out, options=ScoreOptions(k=k, chunk=chunk, threads=threads), workers=workers)
    summary.pop("out")  # a temporary path, gone after the run
    return summary


# Each configuration: (engine, torch threads per scorer) for a given number of workers.
ENGINES = {
    "local, 1 thread": lambda workers: ("local", 1),
    "local, N threads": lambda workers: ("local", workers),
    "ray, N workers x 1 thread": lambda workers: ("ray", 1),
    "spark, N workers x 1 thread": lambda workers: ("spark", 1),
}


def run_rounds(bundle: str, scratch: Path, rounds: int, workers: int, k: int, chunk: int) -> dict[str, list[dict[str, Any]]]:
    """`rounds` scorings per configuration, the order rotated each round so that a change in the
    machine's load falls on every engine alike; the 1-minute load average is kept with each run."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ENGINES}
    names = list(ENGINES)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            load = os.getloadavg()[0]
            runs[name].append(run_engine(name, bundle, scratch, workers, k, chunk) | {"load_average_1min": round(load, 2)})
    return runs


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per configuration: the median rows/s over the rounds, its ratio to the local engine on 1 thread, the checksum."""
    medians = {name: statistics.median(run["rows_per_s"] for run in items) for name, items in runs.items()}
    baseline = medians["local, 1 thread"]
    return {name: {"rows": items[0]["rows"], "median_rows_per_s": round(medians[name], 1),
                   "median_seconds": round(statistics.median(run["seconds"] for run in items), 2),
                   "median_startup_seconds": round(statistics.median(run.get("startup_seconds", 0.0) for run in items), 2),
                   "speed_vs_local_1_thread": round(medians[name] / baseline, 2),
                   "checksums": sorted({run["checksum"] for run in items})}
            for name, items in runs.items()}


def print_table(result: dict[str, Any]) -> None:
    data, workers = result["data"], result["protocol"]["workers"]
    table = Table(title=f"scale_scoring: top-{result['protocol']['k']} of {data['users']:,} users over {data['items']:,} items, "
                        f"median of {result['protocol']['rounds']} rounds")
    for column in ("engine", "rows", "start-up s", "scoring s", "rows/s", "vs local 1 thread", "checksum"):
        table.add_column(column, justify="left" if column in ("engine", "checksum") else "right")
    for name, row in result["engines"].items():
        table.add_row(name.replace("N", str(workers)), f"{row['rows']:,}", f"{row['median_startup_seconds']:.1f}",
                      f"{row['median_seconds']:.1f}", f"{row['median_rows_per_s']:,.0f}", f"{row['speed_vs_local_1_thread']:.2f}x",
                      ", ".join(c[:16] for c in row["checksums"]))
    console = Console(width=150)
    console.print(table)
    console.print(f"checksums identical: {result['checksums_identical']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "scale_scoring")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "scale_scoring.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # Ray runs its workers at nice 15 by default; on a shared machine that alone would slow them
    # against the local engine and Spark's executors, which run at the normal priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    info = build_bundle(args.work, args.users, args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        runs = run_rounds(info["bundle"], Path(scratch), args.rounds, args.workers, args.k, args.chunk)
    engines = summarise(runs)
    result = {
        "benchmark": "scale_scoring",
        "protocol": {"rounds": args.rounds, "k": args.k, "filter_seen": True, "chunk": args.chunk, "workers": args.workers,
                     "timing": "rows/s from engine up (Ray started, Spark session created) to the end of the checksum "
                               "pass; start-up reported apart; local engine: one process, writing one file",
                     "checksum": "sha256 of sorted (user_id, rank, item_id) lines over the whole output",
                     "ray_worker_niceness": os.environ["RAY_worker_niceness"]},
        "machine": machine_info(), "versions": versions() | {"ray": ray.__version__, "pyspark": pyspark.__version__},
        "data": info, "engines": engines, "runs": runs,
        "checksums_identical": len({run["checksum"] for items in runs.values() for run in items}) == 1,
    }
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0 if result["checksums_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
