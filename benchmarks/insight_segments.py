"""Segment benchmark: Shopformer's segments against RFM quantiles on next-period purchase and churn.

    .venv/bin/python benchmarks/insight_segments.py             # the demo shop and Taobao
    .venv/bin/python benchmarks/insight_segments.py taobao      # one of them (results of the other are kept)

See `shopformer.benchmark.segments` for the protocol (a cut one horizon before the log's end,
everything fitted before it, outcomes after it). Prints a table and writes
benchmarks/results/insight_segments.json (machine, versions, protocol).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import polars as pl
import torch

from shopformer.benchmark.segments import run_segments
from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop

TAOBAO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "taobao-multibehavior"
OUT = Path(__file__).resolve().parent / "results" / "insight_segments.json"


def run_demo(minutes: float) -> dict:
    with tempfile.TemporaryDirectory() as work:
        files = generate_demo_shop(Path(work) / "shop", DemoShopConfig(seed=0))
        dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
        truth = pl.read_csv(Path(work) / "shop" / "ground_truth" / "users.csv")
        return run_segments(dataset, train_minutes=minutes, truth=truth)


def run_taobao(minutes: float) -> dict:
    if not TAOBAO.is_dir():
        raise SystemExit(f"{TAOBAO} is missing: the Taobao part needs the shared datasets")
    dataset = read_dataset("taobao", TAOBAO / "ecomm_edge_train.txt", user_features_path=TAOBAO / "ecomm_user_feature.txt",
                           item_features_path=TAOBAO / "ecomm_item_feature.txt")
    return run_segments(dataset, train_minutes=minutes)


def show(results: dict) -> None:
    print(f"{'dataset':<12} {'k':>2} {'ARI seeds':>10} {'outcome':<9} {'eta² ours':>9} {'eta² RFM':>9} "
          f"{'LL gain ours':>12} {'LL gain RFM':>11}")
    for name, result in results.items():
        ari = min(result["segments"]["ari_across_seeds"])
        for outcome, pair in result["explained"].items():
            ours, rfm = pair["shopformer"], pair["rfm_quantiles"]
            print(f"{name:<12} {result['segments']['k']:>2} {ari:>10.3f} {outcome:<9} {ours['eta_squared']:>9.4f} "
                  f"{rfm['eta_squared']:>9.4f} {ours['log_loss_gain']:>12.4f} {rfm['log_loss_gain']:>11.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", choices=("demo", "taobao"), default=[])
    parser.add_argument("--max-minutes", type=float, default=2.0, help="behaviour-model training budget")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in args.datasets or ["demo", "taobao"]:
        results[name] = {"demo": run_demo, "taobao": run_taobao}[name](args.max_minutes)
        OUT.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    show(results)
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
