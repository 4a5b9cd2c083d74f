"""Policy benchmarks on the shared datasets:

    .venv/bin/python benchmarks/policy.py [--runs 30]

Runs `shopformer benchmark policy` (off-policy estimators on every Open Bandit campaign, obp's
protocol) -> benchmarks/results/policy_obd.json, and `shopformer benchmark uplift` (Hillstrom, any
e-mail, visit and conversion) -> benchmarks/results/policy_uplift_<outcome>.json. The CLI prints the tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OBD = DATASETS / "open-bandit-sample"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("shopformer"))
    commands = [[cli, "benchmark", "policy", "--obd", str(OBD), "--runs", str(args.runs), "--json", str(RESULTS / "policy_obd.json")]]
    for outcome in ("visit", "conversion"):
        commands.append([cli, "benchmark", "uplift", "--hillstrom", str(DATASETS / "hillstrom" / "hillstrom.csv"),
                         "--outcome", outcome, "--json", str(RESULTS / f"policy_uplift_{outcome}.json")])
    sys.exit(max(subprocess.call(command) for command in commands))


if __name__ == "__main__":
    main()
