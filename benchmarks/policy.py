"""Off-policy evaluation on the shared Open Bandit Dataset sample, in obp's protocol:

    .venv/bin/python benchmarks/policy.py [--runs 30]

Runs `shopformer benchmark policy` on every campaign and writes benchmarks/results/policy_obd.json
(the CLI prints the table).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

OBD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "open-bandit-sample"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    command = [str(Path(sys.executable).with_name("shopformer")), "benchmark", "policy", "--obd", str(OBD),
               "--runs", str(args.runs), "--json", str(RESULTS / "policy_obd.json")]
    sys.exit(subprocess.call(command))


if __name__ == "__main__":
    main()
