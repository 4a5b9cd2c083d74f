"""`shopformer benchmark fraud`: unsupervised and supervised fraud detection on a sign-up/purchase log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shopformer.benchmark.fraud import TOP_SHARE, run_fraud
from shopformer.cli.common import console, reports_errors

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark fraud --events ../shared/datasets/fraud-ecommerce/fraud_data.csv \\
    --ip-countries ../shared/datasets/fraud-ecommerce/IpAddress_to_Country.csv --json fraud.json\n
  shopformer benchmark fraud --events purchases.csv --json fraud.json
"""

_LABELS = {
    "insight_default": "ours, unsupervised (default)", "insight_tail": "ours, unsupervised (tail only)",
    "iforest": "IsolationForest", "ecod": "ECOD", "copod": "COPOD",
    "lightgbm_classic": "LightGBM, classic features", "insight_supervised": "ours, supervised",
}


def _table(document: dict) -> Table:
    top = f"{TOP_SHARE:.0%}"
    split = document["split"]
    title = (f"Fraud detection, test = last 20% by purchase time ({split['test']['rows']:,} accounts, "
             f"{split['test']['fraud_rate']:.1%} fraud)")
    table = Table(title=title, title_justify="left")
    for column in ("method", "test ROC-AUC [95% CI]", f"test precision@{top}", "validation ROC-AUC", "all accounts ROC-AUC"):
        table.add_column(column, justify="right")
    for name, row in document["methods"].items():
        test, everyone = row["test"], document["all_rows_unsupervised"].get(name)
        low, high = test["roc_auc_ci95"]
        table.add_row(_LABELS.get(name, name), f"{test['roc_auc']:.4f} [{low:.4f}, {high:.4f}]", f"{test[f'precision_at_{top}']:.4f}",
                      f"{row['validation']['roc_auc']:.4f}", "" if everyone is None else f"{everyone['roc_auc']:.4f}")
    return table


@reports_errors
def fraud_benchmark(
    events: Annotated[Path, typer.Option("--events", help="CSV: user_id, signup_time, purchase_time, class (+ device_id, ip_address...).")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    ip_countries: Annotated[Optional[Path], typer.Option("--ip-countries", help="IP-range to country CSV (bounds, country).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of IsolationForest and the bootstrap intervals.")] = 0,
    resamples: Annotated[int, typer.Option("--resamples", min=10, help="Bootstrap draws of the test intervals.")] = 200,
) -> None:
    """IsolationForest, ECOD, COPOD and our unsupervised score against LightGBM on the classic features and
    our supervised model, on a time-ordered 70/10/20 split: ROC-AUC and precision@1% on the test part."""
    document = run_fraud(events, ip_countries=ip_countries, seed=seed, resamples=resamples)
    for note in document["notes"]:
        console.print(f"note: {note}")
    if document["quarantine"]:
        console.print(f"quarantined rows: {document['quarantine']}")
    console.print(_table(document))
    margins = document["margins"]
    for name, margin in margins.items():
        console.print(f"{name.replace('_', ' ')}: {margin['value']:+.4f} AUC [{margin['ci95'][0]:+.4f}, {margin['ci95'][1]:+.4f}]")
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")
