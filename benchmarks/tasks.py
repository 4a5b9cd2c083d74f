"""The behaviour-prediction task benchmark: every registered task model (Shopformer's variants, LightGBM,
logistic regression) on the same out-of-time examples, one run per dataset, one torch thread.

    .venv/bin/python benchmarks/tasks.py taobao      # the real Taobao multi-behaviour sample
    .venv/bin/python benchmarks/tasks.py demo        # the demo shop, with the generator's ground truth
    .venv/bin/python benchmarks/tasks.py rees46 --tasks intent   # 2 h 50 min of REES46 (second timestamps)

Runs `shopformer benchmark tasks` (which prints the table) and writes
benchmarks/results/tasks_<dataset>.json plus reliability diagrams in benchmarks/results/tasks_<dataset>/.
Extra options go to the command (e.g. `--tasks intent,churn`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
TAOBAO = DATASETS / "taobao-multibehavior"
REES46 = DATASETS / "rees46-sample"

#: The default Shopformer task model (the hybrid) and its two Transformer-only variants, against the
#: baselines: every registered model.
MODELS = "shopformer,shopformer-finetune,shopformer-frozen,lightgbm,logistic"

ARGUMENTS = {
    "taobao": ["--format", "taobao", "--events", str(TAOBAO / "ecomm_edge_train.txt"),
               "--user-features", str(TAOBAO / "ecomm_user_feature.txt"),
               "--item-features", str(TAOBAO / "ecomm_item_feature.txt")],
    "demo": ["--demo"],
    "rees46": ["--format", "csv", "--events", str(REES46 / "2019-Oct.csv")],
}
#: The shared dataset folder each real dataset needs.
FOLDERS = {"taobao": TAOBAO, "rees46": REES46}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(ARGUMENTS))
    parser.add_argument("--models", default=MODELS, help="registered task models, comma-separated")
    args, extra = parser.parse_known_args()
    folder = FOLDERS.get(args.dataset)
    if folder is not None and not folder.is_dir():
        sys.exit(f"the {args.dataset} dataset is not at {folder}")
    command = [str(Path(sys.executable).with_name("shopformer")), "benchmark", "tasks", *ARGUMENTS[args.dataset],
               "--threads", "1", "--json", str(RESULTS / f"tasks_{args.dataset}.json"),
               "--plots", str(RESULTS / f"tasks_{args.dataset}"), "--models", args.models, *extra]
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()
