"""Overload: latency of admitted requests with and without load shedding, as concurrency grows.

    .venv/bin/python benchmarks/serve_overload.py [--bundle DIR] [--seconds 10]

Starts the real server on the same bundle (one torch thread): once with load shedding
(`--max-in-flight 8 --max-wait-ms 25`), once without (`--max-in-flight 100000`). At concurrency 8,
32 and 128 the client (asyncio, raw keep-alive HTTP/1.1, from `serve_latency.py`) asks for
recommendations (k=10, full catalog) of random known users for `--seconds`, and records every
answer's status and latency. With shedding, clients either honour `Retry-After` (wait 1 s after a
503) or retry at once (the worst case: rejections then cost the server's event loop too). Reported
per run and level: p50/p99 of the admitted (200) answers, the share shed (503), the admitted rate.
Without `--bundle`, the Beauty bundle of `serve_latency.py` is used (trained there first if absent).
Writes benchmarks/results/serve_overload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from serve_latency import RESULTS, WORK, Connection, ensure_bundle, recommendation_requests, start_server
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, versions

LEVELS = (8, 32, 128)
SHEDDING, NO_SHEDDING = ("--max-in-flight", "8", "--max-wait-ms", "25"), ("--max-in-flight", "100000")
#: name: (server flags, whether clients wait Retry-After after a 503)
RUNS = {"shedding, clients honour Retry-After": (SHEDDING, True),
        "shedding, clients retry at once": (SHEDDING, False),
        "no shedding": (NO_SHEDDING, False)}


async def run_level(port: int, requests: list[bytes], concurrency: int, seconds: float, honour: bool = False) -> dict:
    """Every answer's status and latency over `concurrency` connections for `seconds`."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    answers: list[tuple[int, float]] = []
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection, offset: int) -> None:
        position = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, _ = await connection.send(requests[position % len(requests)])
            answers.append((status, time.perf_counter() - started))
            position += concurrency
            if status == 503 and honour:
                await asyncio.sleep(1.0)  # the server's Retry-After

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(connections)))
    wall = time.perf_counter() - started
    for connection in connections:
        connection.close()
    admitted = np.array([s for status, s in answers if status == 200]) * 1000
    shed = sum(status == 503 for status, _ in answers)
    return {"concurrency": concurrency, "answers": len(answers), "admitted": len(admitted), "shed": shed,
            "other": len(answers) - len(admitted) - shed, "shed_share": round(shed / len(answers), 4),
            "admitted_p50_ms": round(float(np.percentile(admitted, 50)), 2),
            "admitted_p99_ms": round(float(np.percentile(admitted, 99)), 2),
            "admitted_per_s": round(len(admitted) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per concurrency level")
    args = parser.parse_args()
    bundle = ensure_bundle(args.bundle)
    users = Shopformer.load(bundle).known_users()
    rng = np.random.default_rng(0)
    store = WORK / "serve-overload" / "events.sqlite"
    store.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (flags, honour) in RUNS.items():
        process, port = start_server(bundle, store, *flags)
        try:
            asyncio.run(run_level(port, recommendation_requests(users, 200, rng), 4, 5))  # warm-up
            results[name] = [asyncio.run(run_level(port, recommendation_requests(users, 5000, rng), level, args.seconds, honour))
                             for level in LEVELS]
        finally:
            process.terminate()
            process.wait(30)
    report = {"benchmark": "admitted-request latency under overload, with and without load shedding",
              "bundle": str(bundle),
              "runs": {name: {"server_flags": list(flags), "clients_honour_retry_after": honour}
                       for name, (flags, honour) in RUNS.items()},
              "seconds_per_level": args.seconds, "machine": machine_info(), "versions": versions(), "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_overload.json").write_text(json.dumps(report, indent=1))
    print("| run | concurrency | admitted p50 ms | admitted p99 ms | shed | admitted req/s |\n|---|---|---|---|---|---|")
    for name, rows in results.items():
        for row in rows:
            print(f"| {name} | {row['concurrency']} | {row['admitted_p50_ms']} | {row['admitted_p99_ms']} | "
                  f"{row['shed_share']:.1%} | {row['admitted_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
