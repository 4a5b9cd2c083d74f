"""Session-table benchmark on UCI Online Shoppers Purchasing Intention (Sakar et al. 2019): LightGBM and an
MLP against the published MLP / LSTM (accuracy about 0.88, F1 about 0.86).

    .venv/bin/python benchmarks/tasks_sessions.py              # seeds 0-4, about a minute on 2 cores
    .venv/bin/python benchmarks/tasks_sessions.py --seeds 1    # seed 0 only

See `shopformer.benchmark.session_table` for the protocol. The figures with intervals are those of
seed 0 (bootstrap over its test rows); `across_seeds` adds the mean and standard deviation of each test
figure over the seeded splits. Prints a table and writes benchmarks/results/tasks_online_shoppers.json
(machine, versions, protocol).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from shopformer.benchmark.session_table import run_session_benchmark
from shopformer.data.session_table import read_session_table

TABLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online-shoppers-intention" / "online_shoppers_intention.csv"
OUT = Path(__file__).resolve().parent / "results" / "tasks_online_shoppers.json"
#: Numeric codes of the table that name categories (the paper treats them as categorical).
CODES = ("OperatingSystems", "Browser", "Region", "TrafficType")
FIGURES = ("auc", "pr_auc", "accuracy", "f1_positive", "f1_macro", "f1_weighted", "balanced_accuracy", "balanced_f1", "ece")


def across_seeds(documents: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per model and test figure: mean and standard deviation over the seeded runs."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for model in dict.fromkeys(r["model"] for r in documents[0]["results"]):
        tests = [r["metrics"] for d in documents for r in d["results"] if r["model"] == model and r["split"] == "test"]
        summary[model] = {name: {"mean": round(statistics.fmean(m[name] for m in tests), 4),
                                 "sd": round(statistics.pstdev(m[name] for m in tests), 4)} for name in FIGURES}
    return summary


def show(document: dict) -> None:
    print(f"{'model':<17} " + " ".join(f"{name:>22}" for name in FIGURES))
    for result in document["results"]:
        if result["split"] == "test":
            m = result["metrics"]
            cells = (f"{m[n]:.3f} [{m[n + '_ci'][0]:.3f},{m[n + '_ci'][1]:.3f}]" for n in FIGURES)
            print(f"{result['model']:<17} " + " ".join(f"{cell:>22}" for cell in cells))
    for model, figures in document["across_seeds"].items():
        cells = (f"{v['mean']:.3f} ± {v['sd']:.3f}" for v in figures.values())
        print(f"{model + ' (seeds)':<17} " + " ".join(f"{cell:>22}" for cell in cells))
    published = document["published"]["mlp"]
    print(f"published MLP: accuracy {published['accuracy']}, F1 {published['f1']} (which F1 is not stated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeded splits (0, 1, ...)")
    args = parser.parse_args()
    if not TABLE.is_file():
        raise SystemExit(f"{TABLE} is missing: this benchmark needs the shared datasets")
    table = read_session_table(TABLE, "Revenue", categorical=CODES)
    documents = [run_session_benchmark(table, seed=seed) for seed in range(args.seeds)]
    document = documents[0] | {"seeds": list(range(args.seeds)), "across_seeds": across_seeds(documents),
                               "wall_seconds": round(sum(d["wall_seconds"] for d in documents), 1)}
    OUT.write_text(json.dumps(document, indent=1), encoding="utf-8")
    show(document)
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
