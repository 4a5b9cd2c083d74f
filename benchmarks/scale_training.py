"""Data-parallel training: one process against N torchrun (gloo) processes, side by side in one run.

    .venv/bin/python benchmarks/scale_training.py                       # the bundled demo shop
    .venv/bin/python benchmarks/scale_training.py --dataset demo beauty --epochs 20 10

Each dataset is trained twice through the command line with the default configuration and the
same global batch: `python -m shopformer train` (one process) and `torchrun --standalone
--nproc-per-node N -m shopformer train`; every process has one torch thread, a fixed number of
epochs (early stopping off) and the same seed. Compared: validation NDCG@10 (best and per epoch:
leave-one-out, full ranking, pessimistic ties, history items filtered), the median training
seconds per epoch (validation excluded), training windows per second, and the scaling efficiency
throughput_N / (N * throughput_1). Dropout differs between the runs (each rank draws its own
masks), so the curves agree only up to chance.

Control for a shared machine: N independent one-process runs started at once (a few epochs). The
machine's parallel capacity is the sum of their speeds relative to the lone run's (N where N cores
are free); efficiency_vs_capacity = throughput ratio / capacity is the part lost to the data-parallel
run itself. Writes benchmarks/results/scale_training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import generate_demo_shop
from shopformer.models.config import ModelConfig
from shopformer.runtime import machine_info, versions
from shopformer.train.batches import training_windows

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
BEAUTY = DATASETS / "amazon-beauty"
BEAUTY_EXTRAS = {"item_attributes_path": BEAUTY / "Beauty_item2attributes.json", "datamaps_path": BEAUTY / "datamaps.json",
                 "item_titles_path": BEAUTY / "item_title_prefix.txt"}


def _data_arguments(dataset: str) -> list[str]:
    if dataset == "demo":
        return ["--demo"]
    extras = [part for key, path in BEAUTY_EXTRAS.items() for part in ("--with", f"{key}={path}")]
    return [str(BEAUTY / "Beauty.txt"), "--format", "s3rec", *extras]


def _training_windows(dataset: str, scratch: Path) -> tuple[int, int, int]:
    """(users, items, training windows per epoch) of the data as `shopformer train` sees it."""
    if dataset == "demo":
        files = generate_demo_shop(scratch / "demo-shop")
        data = ingest_files(files.events, files.catalog, name="demo-shop").dataset
    else:
        data = read_dataset("s3rec", BEAUTY / "Beauty.txt", **BEAUTY_EXTRAS)
    prepared = prepare(data, PrepareConfig())
    train = prepared.arrays().drop_last(1)  # the last event of each user is validation
    starts, _ = training_windows(train, ModelConfig().max_len + 1)
    return len(prepared.user_encoder.classes), len(prepared.item_encoder.classes), len(starts)


def _command(launch: list[str], dataset: str, epochs: int, out: Path) -> list[str]:
    settings = {"train.num_threads": 1, "train.epochs": epochs, "train.patience": epochs, "train.progress": "false"}
    return [*launch, "-m", "shopformer", "train", *_data_arguments(dataset), "--out", str(out),
            *[part for key, value in settings.items() for part in ("--set", f"{key}={value}")]]


def _start(command: list[str], out: Path) -> subprocess.Popen:
    """Starts `command`; its output goes to a file beside `out` (a pipe nobody reads would block it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / "output.txt").open("w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _finish(process: subprocess.Popen, out: Path) -> list[dict]:
    if process.wait() != 0:
        output = (out.parent / "output.txt").read_text()
        raise SystemExit(f"{' '.join(process.args)} failed:\n{output[-4000:]}")
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _run(launch: list[str], dataset: str, epochs: int, out: Path) -> dict:
    command = _command(launch, dataset, epochs, out)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    curve = _finish(_start(command, out), out)
    wall = time.perf_counter() - started
    seconds = [m["seconds"] for m in curve]
    return {"command": " ".join(command), "load_average_before": round(load, 2), "wall_seconds": round(wall, 1),
            "median_epoch_seconds": round(statistics.median(seconds), 3), "total_epoch_seconds": round(sum(seconds), 2),
            "best_valid_ndcg@10": max(m["valid_ndcg@10"] for m in curve),
            "valid_ndcg@10": [round(m["valid_ndcg@10"], 5) for m in curve], "loss": [round(m["loss"], 4) for m in curve]}


def _side_by_side(dataset: str, epochs: int, processes: int, scratch: Path) -> list[float]:
    """Median epoch seconds of `processes` independent one-process runs started at once."""
    outs = [scratch / f"side-{i}" / "bundle" for i in range(processes)]
    running = [_start(_command([sys.executable], dataset, epochs, out), out) for out in outs]
    return [round(statistics.median(m["seconds"] for m in _finish(p, out)), 3) for p, out in zip(running, outs)]


def compare(dataset: str, epochs: int, processes: int, control_epochs: int) -> dict:
    """One dataset: the one-process and the `processes`-process run, the control, then the ratios."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        users, items, windows = _training_windows(dataset, scratch)
        one = _run([sys.executable], dataset, epochs, scratch / "one" / "bundle")
        many = _run([str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={processes}"], dataset, epochs,
                    scratch / "many" / "bundle")
        side = _side_by_side(dataset, control_epochs, processes, scratch)
    for run in (one, many):
        run["windows_per_second"] = round(windows / run["median_epoch_seconds"], 1)
    speedup = one["median_epoch_seconds"] / many["median_epoch_seconds"]
    capacity = sum(one["median_epoch_seconds"] / seconds for seconds in side)
    ndcg_one, ndcg_many = one["best_valid_ndcg@10"], many["best_valid_ndcg@10"]
    return {"dataset": dataset, "users": users, "items": items, "training_windows": windows, "epochs": epochs,
            "processes": processes, "one_process": one, "data_parallel": many,
            "side_by_side": {"epochs": control_epochs, "median_epoch_seconds": side},
            "throughput_ratio": round(speedup, 3), "scaling_efficiency": round(speedup / processes, 3),
            "parallel_capacity": round(capacity, 3), "efficiency_vs_capacity": round(speedup / capacity, 3),
            "wall_time_ratio": round(one["wall_seconds"] / many["wall_seconds"], 3),
            "best_valid_ndcg@10_relative_difference": round((ndcg_many - ndcg_one) / ndcg_one, 4)}


def _table(rows: list[dict]) -> Table:
    table = Table(title="Data-parallel training (gloo, 1 torch thread per process, same global batch)", title_justify="left")
    columns = ("dataset", "processes", "best NDCG@10", "s / epoch", "windows / s", "throughput ratio", "efficiency",
               "capacity", "eff. vs capacity", "NDCG@10 diff")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["dataset"], "1", *_run_cells(row["one_process"]), "1.00", "", "", "", "")
        table.add_row(row["dataset"], str(row["processes"]), *_run_cells(row["data_parallel"]), f"{row['throughput_ratio']:.2f}",
                      f"{row['scaling_efficiency']:.2f}", f"{row['parallel_capacity']:.2f}", f"{row['efficiency_vs_capacity']:.2f}",
                      f"{row['best_valid_ndcg@10_relative_difference']:+.2%}")
    return table


def _run_cells(run: dict) -> list[str]:
    return [f"{run['best_valid_ndcg@10']:.4f}", f"{run['median_epoch_seconds']:.2f}", f"{run['windows_per_second']:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", choices=["demo", "beauty"], default=["demo"])
    parser.add_argument("--epochs", nargs="+", type=int, default=[20], help="epochs per dataset (one value: for all)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--control-epochs", type=int, default=3, help="epochs of each side-by-side control run")
    parser.add_argument("--json", type=Path, default=RESULTS / "scale_training.json")
    args = parser.parse_args()
    epochs = args.epochs * len(args.dataset) if len(args.epochs) == 1 else args.epochs
    if len(epochs) != len(args.dataset):
        parser.error("give one --epochs value, or one per dataset")
    rows = [compare(dataset, n, args.processes, args.control_epochs) for dataset, n in zip(args.dataset, epochs)]
    document = {
        "benchmark": "scale_training",
        "protocol": __doc__.split("\n\n", 2)[2].strip(),
        "machine": {**machine_info(), "torch_threads": 1, "note": "cores shared with other work; load average per run"},
        "versions": versions(),
        "results": rows,
    }
    Console(width=160).print(_table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
