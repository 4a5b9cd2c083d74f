"""The next-item benchmark on the shared Amazon datasets: Shopformer, its ids-only ablation and the
baselines on the standard leave-one-out split, full ranking, one run per dataset.

    .venv/bin/python benchmarks/next_item.py beauty [--max-minutes 15] [more `benchmark next-item` options]

Runs `shopformer benchmark next-item` with the dataset's files and writes
benchmarks/results/next_item_<dataset>.json (the CLI prints the table).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"


def _s3rec(folder: str, stem: str) -> list[str]:
    root = DATASETS / folder
    return ["--format", "s3rec", "--events", str(root / f"{stem}.txt"),
            "--item-attributes", str(root / f"{stem}_item2attributes.json"),
            "--item-titles", str(root / "item_title_prefix.txt"), "--datamaps", str(root / "datamaps.json")]


ARGUMENTS = {
    "beauty": _s3rec("amazon-beauty", "Beauty"),
    "sports": _s3rec("amazon-sports", "Sports_and_Outdoors"),
    "scientific": ["--format", "recbole", "--events", str(DATASETS / "amazon-scientific")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(ARGUMENTS))
    parser.add_argument("--max-minutes", type=float, default=15.0, help="training budget per Transformer model")
    args, extra = parser.parse_known_args()  # the rest goes to `shopformer benchmark next-item`
    out = RESULTS / f"next_item_{args.dataset}.json"
    command = [str(Path(sys.executable).with_name("shopformer")), "benchmark", "next-item", *ARGUMENTS[args.dataset],
               "--max-minutes", str(args.max_minutes), "--json", str(out), *extra]
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()
