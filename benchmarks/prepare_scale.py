"""Scale benchmark of the preparation stage on a synthetic 10M-event shop log.

Generates a log in memory (`shopformer.data.synth.events`: Zipf-like item popularity, skewed user
activity, session-like timestamps, a realistic event-type mix, ~10% reloads of the previous item), then times
`prepare` (5-core filtering), a LeaveOneOut split and saving the prepared dataset, sampling the
process's resident memory throughout.

    python benchmarks/prepare_scale.py --events 10000000 --seed 0 --json benchmarks/results/prepare_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil
from rich.console import Console
from rich.table import Table

from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Dataset, EventLog
from shopformer.data.splits import LeaveOneOut
from shopformer.data.synth.events import SyntheticEvents

MiB = 1024 * 1024


class PeakMemory:
    """Samples this process's RSS every `interval` seconds in a background thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak = interval, 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def now(self) -> int:
        return self._process.memory_info().rss

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def synthetic_log(n_events: int, n_users: int, n_items: int, seed: int) -> EventLog:
    """The generator's log in one chunk, so its rows are in global time order as shops export them."""
    return EventLog(SyntheticEvents(n_events, seed, n_users, n_items, chunk_events=n_events).frame())


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "numpy": np.__version__,
    }


def timed(figures: dict, name: str, action):
    started = time.perf_counter()
    result = action()
    figures[name] = round(time.perf_counter() - started, 3)
    return result


def run(n_events: int, seed: int) -> dict:
    n_users, n_items = max(1, n_events // 50), max(1, n_events // 100)
    seconds: dict[str, float] = {}
    with PeakMemory() as memory:
        baseline = memory.now()
        log = timed(seconds, "generate", lambda: synthetic_log(n_events, n_users, n_items, seed))
        after_load = memory.now()
        config = PrepareConfig(min_user_events=5, min_item_events=5)
        prepared = timed(seconds, "prepare_total", lambda log=log: prepare(Dataset("synthetic", log), config))
        del log  # the raw log is no longer needed, as in a real run
        split = timed(seconds, "leave_one_out", lambda: LeaveOneOut().split(prepared.events))
        with tempfile.TemporaryDirectory() as tmp:
            timed(seconds, "save", lambda: prepared.save(tmp))
            disk_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
    steps = {s.step: s.seconds for s in prepared.report}
    return {
        "benchmark": "prepare_scale",
        "protocol": "dedupe consecutive (item_id, event_type) -> iterative 5-core -> sessionize (1800 s gap) "
                    "-> encode -> sequences; then LeaveOneOut split; then save (parquet + npz + json)",
        "machine": machine_info(),
        "data": {
            "generator": "synthetic: Zipf(1.05) item popularity, lognormal user activity, ~10% reloads, "
                         "85% in-session gaps ~90 s, 15% gaps ~2 days, 90-day span",
            "seed": seed, "events": n_events, "users": n_users, "items": n_items,
            "events_after_prepare": len(prepared.events),
            "users_after_prepare": len(prepared.user_encoder.classes_),
            "items_after_prepare": len(prepared.item_encoder.classes_),
            "split_sizes": split.sizes(),
            "saved_bytes": disk_bytes,
        },
        "seconds": {**seconds, **{f"prepare.{k}": v for k, v in steps.items()}},
        "prepare_report": [vars(s) for s in prepared.report],
        "memory_mib": {
            "baseline_rss": round(baseline / MiB, 1),
            "after_generate_rss": round(after_load / MiB, 1),
            "peak_rss_sampled": round(memory.peak / MiB, 1),
            # ru_maxrss is in KiB on Linux and covers the whole process lifetime.
            "peak_rss_getrusage": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "sequences_arrays": round(sum(getattr(prepared.sequences, a).nbytes for a in
                                          ("users", "offsets", "items", "event_types", "timestamps")) / MiB, 1),
        },
    }


def print_table(result: dict) -> None:
    table = Table(title=f"prepare_scale: {result['data']['events']:,} events")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in result["seconds"].items():
        table.add_row(f"{name} (s)", f"{value:.2f}")
    for name, value in result["memory_mib"].items():
        table.add_row(f"{name} (MiB)", f"{value:,.1f}")
    for name in ("events_after_prepare", "users_after_prepare", "items_after_prepare"):
        table.add_row(name, f"{result['data'][name]:,}")
    table.add_row("split sizes", str(result["data"]["split_sizes"]))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "prepare_scale.json")
    args = parser.parse_args(argv)
    result = run(args.events, args.seed)
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
