"""Test AUCs of two task-benchmark runs side by side, per task and model, to 3 decimals.

    .venv/bin/python benchmarks/compare_tasks.py BEFORE.json AFTER.json [--json OUT]

BEFORE and AFTER are JSON files written by `shopformer benchmark tasks` (e.g. the same command on two
versions of the code). Prints one row per (task, model) with both AUCs, their difference and whether
they agree to 3 decimals, and writes the table with both runs' machine and wall time to OUT.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compare_tasks.json"


def test_aucs(run: dict) -> dict[tuple[str, str], float]:
    """{(task, model): test AUC} of one benchmark document."""
    return {(r["task"], r["model"]): r["metrics"]["auc"] for r in run["results"] if r["split"] == "test"}


def compare(before: dict, after: dict) -> list[dict]:
    """One row per (task, model) found in either run."""
    old, new = test_aucs(before), test_aucs(after)
    rows = []
    for task, model in sorted(set(old) | set(new)):
        a, b = old.get((task, model)), new.get((task, model))
        both = a is not None and b is not None
        rows.append({"task": task, "model": model, "before": a, "after": b,
                     "delta": round(b - a, 4) if both else None, "same_to_3_decimals": both and round(a, 3) == round(b, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    before, after = (json.loads(path.read_text(encoding="utf-8")) for path in (args.before, args.after))
    rows = compare(before, after)
    print(f"{'task':<18}{'model':<22}{'before':>8}{'after':>8}{'delta':>9}  same to 3 dp")
    for row in rows:
        values = [f"{row[k]:.4f}" if row[k] is not None else "-" for k in ("before", "after")]
        delta = f"{row['delta']:+.4f}" if row["delta"] is not None else "-"
        print(f"{row['task']:<18}{row['model']:<22}{values[0]:>8}{values[1]:>8}{delta:>9}  {row['same_to_3_decimals']}")
    same = sum(row["same_to_3_decimals"] for row in rows)
    print(f"{same} of {len(rows)} test AUCs agree to 3 decimals")
    runs = {name: {"file": str(path), "machine": run.get("machine"), "versions": run.get("versions"),
                   "wall_seconds": run.get("wall_seconds")} for name, path, run in (("before", args.before, before),
                                                                                    ("after", args.after, after))}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs, "agree": same, "of": len(rows), "rows": rows}, indent=1), encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
