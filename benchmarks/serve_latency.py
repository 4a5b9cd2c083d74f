"""Latency and throughput of `shopformer serve` on loopback, over an Amazon Beauty bundle.

    .venv/bin/python benchmarks/serve_latency.py [--bundle DIR] [--requests 3000] [--seconds 15]

Starts the real server (one torch thread, SQLite store with `synchronous=FULL`), then a bounded
load generator (asyncio, raw HTTP/1.1 keep-alive connections, so the client costs little CPU on a
shared machine) sends, at concurrency 1, 8 and 32:
  - GET /v1/users/{user}/recommendations?k=10 for random known users (full catalog scoring);
  - POST /v1/events with batches of 100 events (validated, durably stored, applied to the states).
Each level stops after `--requests` requests or `--seconds` seconds, whichever comes first.
Side by side in the same run: recommendations at concurrency 32 with micro-batching off
(`--max-batch 1`), and the in-process `Shopformer.recommend` for one user (the library call the
service wraps). Without `--bundle`, a Beauty bundle is trained first into benchmarks/work/ with a
5-minute budget. Prints a table and writes benchmarks/results/serve_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, versions

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parents[1] / "shared" / "datasets" / "amazon-beauty"
WORK = ROOT / "work"
RESULTS = ROOT / "results"
LEVELS = (1, 8, 32)
TARGETS = {"recommend_p99_ms_at_8": 20.0, "recommend_rps_at_8": 300.0, "ingest_events_per_s": 2000.0}


def ensure_bundle(bundle: Path | None) -> Path:
    if bundle is not None:
        return bundle
    bundle = WORK / "beauty-bundle"
    if not (bundle / "bundle.json").is_file():
        subprocess.run([sys.executable, "-m", "shopformer", "train", str(DATA / "Beauty.txt"), "--format", "s3rec",
                        "--with", f"item_attributes_path={DATA / 'Beauty_item2attributes.json'}",
                        "--with", f"datamaps_path={DATA / 'datamaps.json'}",
                        "--with", f"item_titles_path={DATA / 'item_title_prefix.txt'}",
                        "--out", str(bundle), "--max-minutes", "5", "--set", "train.num_threads=1"], check=True)
    return bundle


class Connection:
    """One keep-alive HTTP/1.1 connection: pre-built request bytes in, (status, body) out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def request_bytes(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def run_level(port: int, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    """Sends `requests` over `concurrency` connections (bounded by `seconds`); latency percentiles and rate."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    position = 0
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        nonlocal position, errors
        while position < len(requests) and time.perf_counter() < deadline:
            request = requests[position]
            position += 1
            started = time.perf_counter()
            status, _ = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            errors += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - started
    for connection in connections:
        connection.close()
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "requests_per_s": round(len(latencies) / wall, 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(bundle: Path, store: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    for stale in store.parent.glob(store.name + "*"):
        stale.unlink()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "shopformer", "serve", "--bundle", str(bundle), "--store", str(store),
                                "--port", str(port), "--threads", "1", *extra], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(request_bytes("GET", "/healthz"))
                if b" 200 " in sock.recv(64):
                    return process, port
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


def recommendation_requests(users: list[str], n: int, rng: np.random.Generator) -> list[bytes]:
    return [request_bytes("GET", f"/v1/users/{user}/recommendations?k=10") for user in rng.choice(users, size=n)]


def ingestion_requests(users: list[str], items: list[str], n: int, level: int, rng: np.random.Generator) -> list[bytes]:
    now = int(time.time())
    batches = []
    for b in range(n):
        picked_users, picked_items = rng.choice(users, size=100), rng.choice(items, size=100)
        events = [{"event_id": f"bench-{level}-{b}-{i}", "user_id": str(u), "item_id": str(it), "event_type": "view",
                   "timestamp": now - 3600 + i} for i, (u, it) in enumerate(zip(picked_users, picked_items))]
        batches.append(request_bytes("POST", "/v1/events", json.dumps({"events": events}).encode()))
    return batches


def batch_sizes(port: int) -> dict:
    """Mean micro-batch size from the server's /metrics."""
    async def fetch() -> bytes:
        connection = await Connection.open(port)
        _, body = await connection.send(request_bytes("GET", "/metrics"))
        connection.close()
        return body

    lines = asyncio.run(fetch()).decode().splitlines()
    value = {line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("shopformer_recommend_batch_size_")}
    count = value.get("shopformer_recommend_batch_size_count", 0)
    return {"batches": int(count), "mean_batch_size": round(value.get("shopformer_recommend_batch_size_sum", 0) / max(count, 1), 2)}


def in_process_recommend(model: Shopformer, users: list[str], repeats: int = 200) -> dict:
    """The library call the service wraps, one user per call, in this process (one torch thread)."""
    model.train_config.num_threads = 1
    timings = []
    for user in users[:repeats]:
        started = time.perf_counter()
        model.recommend(users=[user], k=10)
        timings.append(time.perf_counter() - started)
    ms = np.array(timings[10:]) * 1000  # the first calls warm the item table and thread pool
    return {"calls": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def measure(bundle: Path, args: argparse.Namespace, users: list[str], items: list[str]) -> dict:
    rng = np.random.default_rng(0)
    store = WORK / "serve-bench" / "events.sqlite"
    store.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {"recommend": [], "ingest": [], "recommend_unbatched": []}
    process, port = start_server(bundle, store)
    try:
        asyncio.run(run_level(port, recommendation_requests(users, 200, rng), 8, 30))  # warm-up
        for level in LEVELS:
            requests = recommendation_requests(users, args.requests, rng)
            results["recommend"].append(asyncio.run(run_level(port, requests, level, args.seconds)))
        results["micro_batching"] = batch_sizes(port)
        for level in LEVELS:
            requests = ingestion_requests(users, items, args.requests // 10, level, rng)
            row = asyncio.run(run_level(port, requests, level, args.seconds))
            results["ingest"].append(row | {"events_per_s": round(row["requests_per_s"] * 100, 1)})
    finally:
        process.terminate()
        process.wait(30)
    process, port = start_server(bundle, store, "--max-batch", "1")
    try:
        asyncio.run(run_level(port, recommendation_requests(users, 200, rng), 8, 30))
        requests = recommendation_requests(users, args.requests, rng)
        results["recommend_unbatched"].append(asyncio.run(run_level(port, requests, 32, args.seconds)))
    finally:
        process.terminate()
        process.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=3000, help="most requests per level (ingestion: a tenth, of 100 events)")
    parser.add_argument("--seconds", type=float, default=15.0, help="most seconds per level")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = ensure_bundle(args.bundle)
    model = Shopformer.load(bundle)
    users, items = model.user_encoder_.classes_.to_list(), model.item_features_.item_ids[2:].astype(str).tolist()
    load_before = os.getloadavg()
    results = measure(bundle, args, users, items)
    results["in_process_recommend"] = in_process_recommend(model, list(np.random.default_rng(1).choice(users, 210)))
    at_8 = next(r for r in results["recommend"] if r["concurrency"] == 8)
    best_ingest = max(r["events_per_s"] for r in results["ingest"])
    unbatched, at_32 = results["recommend_unbatched"][0], results["recommend"][-1]
    summary = {
        "recommend_p99_ms_at_8": at_8["p99_ms"], "recommend_rps_at_8": at_8["requests_per_s"], "ingest_events_per_s": best_ingest,
        "micro_batching_throughput_ratio_at_32": round(at_32["requests_per_s"] / unbatched["requests_per_s"], 2),
        "http_over_in_process_p50_ratio": round(results["recommend"][0]["p50_ms"] / results["in_process_recommend"]["p50_ms"], 2),
    }
    met = {"recommend_p99_ms_at_8": summary["recommend_p99_ms_at_8"] <= TARGETS["recommend_p99_ms_at_8"],
           "recommend_rps_at_8": summary["recommend_rps_at_8"] >= TARGETS["recommend_rps_at_8"],
           "ingest_events_per_s": summary["ingest_events_per_s"] >= TARGETS["ingest_events_per_s"]}
    report = {
        "benchmark": "shopformer serve on loopback: recommendations (k=10, full catalog) "
                     "and event ingestion (batches of 100, synchronous=FULL)",
        "bundle": str(bundle), "items": len(items), "users": len(users), "model": model.model_config_.model_dump(),
        "server": {"torch_threads": 1, "store": "SQLite WAL, synchronous=FULL", "max_batch": 64},
        "client": "asyncio raw HTTP/1.1 keep-alive, one connection per concurrent client, same machine",
        "bounds": {"requests_per_level": args.requests, "seconds_per_level": args.seconds},
        "machine": machine_info() | {"load_average_before": [round(v, 2) for v in load_before],
                                     "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "versions": versions(), "targets": TARGETS, "summary": summary, "targets_met": met, "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_latency.json").write_text(json.dumps(report, indent=1))
    print_table(results, summary, met)


def print_table(results: dict, summary: dict, met: dict) -> None:
    print("| endpoint | concurrency | requests | p50 ms | p95 ms | p99 ms | throughput |\n|---|---|---|---|---|---|---|")
    for name, label, unit in (("recommend", "recommendations", "req/s"),
                              ("recommend_unbatched", "recommendations, no micro-batching", "req/s"),
                              ("ingest", "events (batches of 100)", "events/s")):
        for row in results[name]:
            rate = row.get("events_per_s", row["requests_per_s"])
            print(f"| {label} | {row['concurrency']} | {row['requests']} | "
                  f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {rate:,.0f} {unit} |")
    print(f"in-process Shopformer.recommend (one user): p50 {results['in_process_recommend']['p50_ms']} ms; "
          f"mean micro-batch {results['micro_batching']['mean_batch_size']}")
    print("summary:", json.dumps(summary), "targets met:", json.dumps(met))


if __name__ == "__main__":
    main()
