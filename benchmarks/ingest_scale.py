"""Ingestion at scale: validate a synthetic 10M-event CSV (with a few bad rows) and measure time and peak memory.

Run: .venv/bin/python benchmarks/ingest_scale.py --events 10000000 --json benchmarks/results/ingest_scale.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_scale import machine_info  # noqa: E402
from shopformer.data.mapping import EventMapping  # noqa: E402
from shopformer.data.validate import load_events  # noqa: E402

TYPES = np.array(["page_view", "add_to_cart", "purchase", "wishlist"])


def write_log(path: Path, n: int, seed: int) -> int:
    """A CSV of n events; every 100,000th row gets an unknown event type (to be quarantined)."""
    rng = np.random.default_rng(seed)
    types = TYPES[rng.choice(4, size=n, p=[0.85, 0.08, 0.03, 0.04])]
    types[::100_000] = "teleport"
    frame = pl.DataFrame({
        "event_id": np.arange(n).astype(str),
        "user_id": rng.integers(0, 200_000, n).astype(str),
        "item_id": (rng.zipf(1.2, n) % 100_000).astype(str),
        "timestamp": 1_700_000_000 + np.sort(rng.integers(0, 90 * 86_400, n)),
        "event_type": types,
    })
    frame.write_csv(path)
    return int((types == "teleport").sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/ingest_scale.json"))
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        print(write_log(args.write, args.events, args.seed))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        # Written by a child process so that this one's peak memory is the ingestion's alone.
        child = [sys.executable, __file__, "--write", str(path), "--events", str(args.events), "--seed", str(args.seed)]
        planted = int(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        size_mb = path.stat().st_size / 2**20
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        result = load_events(path, EventMapping(event_id_col="event_id"))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "benchmark": "ingest_scale", "machine": machine_info(), "events": args.events, "csv_mib": round(size_mb, 1),
        "seconds": round(seconds, 2), "rows_per_second": round(args.events / seconds),
        "peak_rss_mib": round(peak, 1), "rss_before_mib": round(base, 1),
        "accepted": len(result.events), "quarantined": result.quarantine.height, "planted_bad_rows": planted,
        "rows_read": result.rows_read, "python": platform.python_version(),
    }
    table = Table(title=f"Validating a {args.events:,}-event CSV ({size_mb:,.0f} MiB)")
    for key in ("seconds", "rows_per_second", "peak_rss_mib", "accepted", "quarantined", "planted_bad_rows"):
        table.add_row(key, f"{figures[key]:,}")
    Console().print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
