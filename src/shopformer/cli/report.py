"""Rich tables the commands print about ingestion and preparation."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
from rich.table import Table

from shopformer.cli.common import console
from shopformer.data.schema import Dataset
from shopformer.data.validate import IngestResult


def show_ingest_report(result: IngestResult) -> None:
    """Rows read, accepted and quarantined per reason: every input row is accounted for."""
    table = Table(title=f"Validation of {result.source}", title_justify="left")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for row in result.summary().iter_rows(named=True):
        style = "green" if row["reason"] == "accepted" else "yellow"
        table.add_row(f"[{style}]{row['reason']}[/]", f"{row['count']:,}")
    table.add_row("[bold]rows read[/]", f"[bold]{result.rows_read:,}[/]")
    console.print(table)


def show_dataset_counts(dataset: Dataset) -> None:
    """Users, items, events and events per type of a dataset."""
    log = dataset.events
    table = Table(title=f"Dataset {dataset.name}", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("users", f"{log.n_users:,}")
    table.add_row("items", f"{log.n_items:,}")
    table.add_row("events", f"{len(log):,}")
    for event_type, count in log.event_counts().items():
        table.add_row(f"  {event_type}", f"{count:,}")
    if dataset.catalog is not None:
        table.add_row("catalog items", f"{len(dataset.catalog):,}")
    table.add_row("time resolution", log.time_resolution)
    if len(log) and log.time_resolution != "order":
        first, last = log.frame.select(pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")).row(0)
        table.add_row("time span", f"{_date(first)} .. {_date(last)}")
    console.print(table)


def show_streaming_summary(summary) -> None:
    """Rows read, quarantined per reason and kept, and the counts of a streamed preparation's result."""
    table = Table(title=f"Dataset {summary.name}", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("rows read", f"{summary.rows_read:,}")
    for reason, count in summary.quarantined.items():
        table.add_row(f"[yellow]  quarantined: {reason}[/]", f"{count:,}")
    steps = {step.step: step for step in summary.report}
    for step in ("dedupe", "min_count"):
        if step in steps:
            table.add_row(f"  removed by {step}", f"{steps[step].rows_in - steps[step].rows_out:,}")
    table.add_row("events", f"{summary.events:,}")
    table.add_row("users", f"{summary.users:,}")
    table.add_row("items", f"{summary.items:,}")
    if "catalog" in steps:
        table.add_row("catalog items", f"{steps['catalog'].rows_out:,}")
    console.print(table)


def show_columns(preview: pl.DataFrame, nulls: dict[str, int], roles: dict[str, str]) -> None:
    """The file's columns with the role each one was given and a few example values."""
    by_column = {col: field.removesuffix("_col") for field, col in roles.items() if col}
    table = Table(title="Columns", title_justify="left")
    for name in ("column", "role", "empty", "examples"):
        table.add_column(name)
    for col, empty in nulls.items():
        values = preview[col].drop_nulls().unique(maintain_order=True).head(3).to_list()
        examples = ", ".join(str(v) for v in values)
        table.add_row(col, by_column.get(col, "-"), f"{empty:,}", examples[:60])
    console.print(table)


def _date(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def show_training_result(model, bundle) -> None:
    """Best epoch and its validation scores of a fitted `Shopformer`, and where it was saved."""
    summary = model.training_summary
    history, best_epoch = summary["history"], summary["best_epoch"]
    best = history[best_epoch - 1] if best_epoch else history[-1]
    console.print(
        f"[green]Bundle written to {bundle}[/]: best epoch {best_epoch} of {len(history)}, "
        f"validation HR@10 {best.get('valid_hr@10', float('nan')):.4f}, NDCG@10 {best.get('valid_ndcg@10', float('nan')):.4f} "
        f"(full ranking over {model.item_features.n_items - 2} items), {summary['train_seconds']:.0f} s of training"
    )
    privacy = summary["privacy"]
    if privacy is not None:
        console.print(f"User-level differential privacy: epsilon {privacy['epsilon_spent']:.2f} spent at delta "
                      f"{privacy['delta']:.2g} (noise multiplier {privacy['noise_multiplier']:.3f}); the last epoch is kept")


def show_table(frame: pl.DataFrame, title: str) -> None:
    """Every row of a (small) table, floats to four decimals."""
    table = Table(title=title, title_justify="left")
    for name in frame.columns:
        table.add_column(name, justify="right" if frame[name].dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
