"""Events at scale: 1M -> 10M -> 100M synthetic events as Parquet parts, prepared in bounded memory.

For each size: the generator writes the log chunk by chunk (`shopformer.data.synth.events`), then
`prepare_parquet` streams it into a prepared dataset (5-core). Up to --in-memory-max events the
in-memory path (`ingest_files` + `prepare` + `save` on the same rows in one file) runs beside it, for
the time and memory ratios and an equality check of the two results. At --spark-events the Spark
engine (local mode) prepares the same parts, and its result is checked against the local one.

Every step runs in its own child process, so one size's memory never counts towards another's;
peak RSS is both the child's own `ru_maxrss` and the sampled sum over its process tree (Spark's
JVM and Python workers included). Generated data lives under --work and is deleted after each size.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/scale_events.py --events 1000000 10000000 100000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_scale import machine_info  # noqa: E402
from shopformer.data.prepared import PrepareConfig  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CONFIG = PrepareConfig(min_user_events=5, min_item_events=5)
MiB = 2**20


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # a worker that just exited
            pass
    return total


def run_child(task: str, *args: str) -> dict:
    """Runs `task` in a fresh interpreter; its JSON answer plus wall seconds and the sampled peak RSS of its tree."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--child", task, *args], stdout=subprocess.PIPE, text=True)
    process, peak, done = psutil.Process(child.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(process))
            except psutil.Error:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"child task {task} {args} failed with exit code {child.returncode}")
    answer = json.loads(output.strip().splitlines()[-1])
    return {**answer, "wall_seconds": round(time.perf_counter() - started, 2), "tree_peak_rss_mib": round(peak[0] / MiB, 1)}


def child(task: str, args: list[str]) -> dict:
    """The work of one child process (imports inside, so each child loads only what it uses)."""
    started = time.perf_counter()
    if task == "generate":
        from shopformer.data.synth.events import SyntheticEvents, write_synthetic_events

        files = write_synthetic_events(SyntheticEvents(int(args[0]), seed=int(args[1])), args[2])
        answer = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    elif task == "single":
        import polars as pl

        pl.scan_parquet(f"{args[0]}/*.parquet").sink_parquet(args[1])
        answer = {}
    elif task == "stream":
        from shopformer.data.streaming import prepare_parquet

        answer = _summary(prepare_parquet(args[0], args[1], CONFIG))
    elif task == "memory":
        answer = _in_memory(args[0], args[1])
    elif task == "spark":
        from shopformer.scale.spark_prepare import prepare_with_spark

        answer = _summary(prepare_with_spark(args[0], args[1], CONFIG, master="local[2]"))
    elif task == "compare":
        from shopformer.data.prepared import PreparedDataset

        answer = {"differences": PreparedDataset.load(args[0]).differences(PreparedDataset.load(args[1]))}
    else:
        raise SystemExit(f"unknown child task {task}")
    answer.update(seconds=round(time.perf_counter() - started, 2),
                  peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return answer


def _summary(summary) -> dict:
    return {"events_after": summary.events, "users_after": summary.users, "items_after": summary.items,
            "rows_read": summary.rows_read, "steps": {s.step: s.seconds for s in summary.report}}


def _in_memory(single_file: str, out: str) -> dict:
    from shopformer.data.ingest import ingest_files
    from shopformer.data.prepared import prepare

    started = time.perf_counter()
    dataset = ingest_files(single_file).dataset
    read = time.perf_counter()
    prepared = prepare(dataset, CONFIG)
    del dataset
    prepared.save(out)
    return {"ingest_seconds": round(read - started, 2), "events_after": len(prepared.events),
            "steps": {s.step: s.seconds for s in prepared.report}}


def size_run(n: int, seed: int, work: Path, in_memory_max: int, spark_events: int) -> dict:
    # The parts folder and the single file share the name "events", as their datasets then do.
    folder = work / f"events-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    run: dict = {"events": n, "generate": run_child("generate", str(n), str(seed), str(folder / "events"))}
    run["stream"] = run_child("stream", str(folder / "events"), str(folder / "streamed"))
    run["prepared_bytes"] = sum(p.stat().st_size for p in (folder / "streamed").rglob("*") if p.is_file())
    if n <= in_memory_max:
        run_child("single", str(folder / "events"), str(folder / "events.parquet"))
        run["in_memory"] = run_child("memory", str(folder / "events.parquet"), str(folder / "memory"))
        compared = run_child("compare", str(folder / "memory"), str(folder / "streamed"))
        run["in_memory"]["differences_from_streaming"] = compared["differences"]
    if n == spark_events:
        run["spark"] = run_child("spark", str(folder / "events"), str(folder / "spark"))
        compared = run_child("compare", str(folder / "streamed"), str(folder / "spark"))
        run["spark"]["differences_from_local"] = compared["differences"]
    shutil.rmtree(folder)
    return run


def ratios(runs: list[dict]) -> dict:
    """Side-by-side ratios of the same run: in-memory over streaming, and Spark over local streaming."""
    found = {}
    for run in runs:
        stream = run["stream"]
        if "in_memory" in run:
            memory = run["in_memory"]
            found[f"{run['events']}:in_memory_over_streaming_seconds"] = round(memory["wall_seconds"] / stream["wall_seconds"], 2)
            found[f"{run['events']}:in_memory_over_streaming_peak_rss"] = round(memory["peak_rss_mib"] / stream["peak_rss_mib"], 2)
        if "spark" in run:
            found[f"{run['events']}:spark_over_streaming_seconds"] = round(run["spark"]["wall_seconds"] / stream["wall_seconds"], 2)
    return found


def print_table(result: dict) -> None:
    table = Table(title="scale_events: generate and prepare (5-core) synthetic events")
    for name in ("events", "path", "seconds", "peak RSS MiB (process)", "peak RSS MiB (tree)", "events after", "same result"):
        table.add_column(name, justify="right")
    for run in result["runs"]:
        rows = [("generate", run["generate"], "")]
        rows.append(("streaming", run["stream"], ""))
        if "in_memory" in run:
            rows.append(("in-memory", run["in_memory"], str(run["in_memory"]["differences_from_streaming"] == [])))
        if "spark" in run:
            rows.append(("spark local[2]", run["spark"], str(run["spark"]["differences_from_local"] == [])))
        for path, figures, same in rows:
            table.add_row(f"{run['events']:,}", path, f"{figures['wall_seconds']:.1f}", f"{figures['peak_rss_mib']:,.0f}",
                          f"{figures['tree_peak_rss_mib']:,.0f}", f"{figures['events_after']:,}" if "events_after" in figures else "", same)
    console = Console(width=140)  # wide enough for every column even when the output is a log file
    console.print(table)
    for name, value in result["ratios"].items():
        console.print(f"{name}: {value}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label, marker in (("generate", "generate", "s"), ("stream", "prepare, streaming", "o"),
                               ("in_memory", "prepare, in memory", "^"), ("spark", "prepare, Spark local[2]", "D")):
        points = [(run["events"], run[key]) for run in result["runs"] if key in run]
        if not points:
            continue
        sizes = [n for n, _ in points]
        left.plot(sizes, [f["wall_seconds"] for _, f in points], marker=marker, label=label)
        right.plot(sizes, [f["tree_peak_rss_mib"] / 1024 for _, f in points], marker=marker, label=label)
    for axis, ylabel in ((left, "wall seconds"), (right, "peak RSS, GiB (process tree)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("events")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
    right.axhline(16, color="grey", linestyle="--", linewidth=1, label="16 GiB target")
    right.legend(fontsize=8)
    figure.suptitle(f"Synthetic events on {result['machine']['cores']} cores, {result['machine']['ram_gib']} GiB RAM")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-memory-max", type=int, default=10_000_000, help="largest size also prepared in memory")
    parser.add_argument("--spark-events", type=int, default=1_000_000, help="size prepared by Spark too (0: none)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shopformer-scale-events"))
    parser.add_argument("--json", type=Path, default=RESULTS / "scale_events.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "scale_events.png")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1:])))
        return 0
    runs = [size_run(n, args.seed, args.work, args.in_memory_max, args.spark_events) for n in args.events]
    result = {
        "benchmark": "scale_events",
        "protocol": "generate N events as Parquet parts of ~2M events -> prepare: validate, dedupe consecutive "
                    "(item_id, event_type), iterative 5-core, sessionize (1800 s), encode, sequences, save; "
                    "each step in a child process; in-memory = ingest_files + prepare + save on one file of the same rows",
        "machine": machine_info(),
        "data": {"generator": "shopformer.data.synth.events.SyntheticEvents (users = N/50, items = N/100)", "seed": args.seed},
        "runs": runs,
        "ratios": ratios(runs),
    }
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, args.plot)
    print(f"wrote {args.json} and {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
