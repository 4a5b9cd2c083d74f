"""`shopformer benchmark sessions`: purchase models on a one-row-per-session table, against published figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shopformer.benchmark.session_table import PUBLISHED, run_session_benchmark
from shopformer.cli.common import console, reports_errors
from shopformer.cli.tasks import split_names
from shopformer.data.session_table import read_session_table
from shopformer.tasks.session_table import SESSION_MODELS

CategoricalOpt = Annotated[
    Optional[str], typer.Option("--categorical", help="Comma-separated numeric-looking columns that are codes (one-hot encoded).")
]

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark sessions --table ../shared/datasets/online-shoppers-intention/online_shoppers_intention.csv \\
    --label Revenue --categorical OperatingSystems,Browser,Region,TrafficType --json online_shoppers.json\n
  shopformer benchmark sessions --table sessions.parquet --label bought --drop session_id --models lightgbm --json out.json
"""


def _columns(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _interval(metrics: dict, name: str) -> str:
    low, high = metrics[f"{name}_ci"]
    return f"{metrics[name]:.3f} [{low:.3f}, {high:.3f}]"


def _table(document: dict) -> Table:
    data = document["dataset"]
    table = Table(title=f"Session table {data['name']}: test split ({data['split_rows']['test']:,} rows, "
                        f"{data['base_rate']:.1%} positive), calibrated on valid", title_justify="left")
    shown = ("auc", "pr_auc", "accuracy", "f1_positive", "f1_macro", "balanced_f1", "ece")
    for column in ("model", "ROC-AUC", "PR-AUC", "accuracy", "F1 positive", "F1 macro", "F1 balanced", "ECE"):
        table.add_column(column, justify="right")
    for result in document["results"]:
        if result["split"] == "test":
            table.add_row(result["model"], *(_interval(result["metrics"], name) for name in shown))
    mlp = PUBLISHED["mlp"]
    table.add_row("published MLP", "", "", f"{mlp['accuracy']:.2f}", "", "", f"{mlp['f1']:.2f} (which F1: not stated)", "")
    return table


@reports_errors
def sessions_benchmark(
    table_path: Annotated[Path, typer.Option("--table", help="One row per session: CSV/TSV (delimiter detected), Parquet or JSON Lines.")],
    label: Annotated[str, typer.Option("--label", help="The yes/no column to predict (TRUE/FALSE, 1/0 or yes/no).")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    categorical: CategoricalOpt = None,
    drop: Annotated[Optional[str], typer.Option("--drop", help="Comma-separated columns to leave out (ids).")] = None,
    models: Annotated[str, typer.Option("--models", help=f"Comma-separated, from {', '.join(SESSION_MODELS)}.")] = ",".join(SESSION_MODELS),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the MLP and the bootstrap.")] = 0,
    resamples: Annotated[int, typer.Option("--resamples", min=10, help="Bootstrap draws of the intervals.")] = 200,
) -> None:
    """LightGBM (the task baselines' tuned booster) and an MLP on a stratified 70/10/20 split, calibrated on
    valid: ROC-AUC, PR-AUC, accuracy, F1, ECE with 95% bootstrap intervals, against Sakar et al. (2019)."""
    chosen = split_names(models, list(SESSION_MODELS), "session-table model(s)")
    table = read_session_table(table_path, label, categorical=_columns(categorical), drop=_columns(drop))
    document = run_session_benchmark(table, models=chosen, seed=seed, resamples=resamples)
    console.print(_table(document))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")
