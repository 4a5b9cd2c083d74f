"""Behaviour prediction tasks on the command line: `benchmark tasks`, `train-tasks`, `predict`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import torch
import typer
from rich.table import Table

from shopformer.cli.common import console, reports_errors
from shopformer.data.demo import DemoShopConfig, generate_demo_shop
from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.schema import Dataset
from shopformer.errors import ConfigError
from shopformer.tasks.base import TASKS
from shopformer.tasks.benchmark import run_task_benchmark
from shopformer.tasks.examples import TaskConfig
from shopformer.tasks.models import MODEL_FACTORIES

DemoOpt = Annotated[bool, typer.Option("--demo", help="Use the bundled demo shop (generated on the fly).")]
FormatOpt = Annotated[str, typer.Option("--format", help="taobao (multi-behaviour edges) or csv (the event contract).")]
EventsOpt = Annotated[Optional[Path], typer.Option("--events", help="Event file: taobao edges or a CSV/Parquet/JSONL log.")]
UserFeaturesOpt = Annotated[Optional[Path], typer.Option("--user-features", help="taobao: the user feature file.")]
ItemFeaturesOpt = Annotated[Optional[Path], typer.Option("--item-features", help="taobao: the item feature file.")]
CatalogOpt = Annotated[Optional[Path], typer.Option("--catalog", help="csv: the catalog file.")]
HorizonOpt = Annotated[Optional[int], typer.Option("--horizon-days", help="Label window h of propensity and churn (default: a fifth of the log, 1-7 days).")]
TasksOpt = Annotated[str, typer.Option("--tasks", help=f"Comma-separated, from {', '.join(TASKS)}.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="Torch and LightGBM threads.")]

BENCHMARK_EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark tasks --demo --json tasks_demo.json\n
  shopformer benchmark tasks --format taobao --events ../shared/datasets/taobao-multibehavior/ecomm_edge_train.txt \\
    --user-features ../shared/datasets/taobao-multibehavior/ecomm_user_feature.txt \\
    --item-features ../shared/datasets/taobao-multibehavior/ecomm_item_feature.txt --json tasks_taobao.json
"""


def split_names(text: str, known, what: str) -> list[str]:
    """A comma-separated option as a list, every name checked against `known`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ConfigError(f"unknown {what} {unknown or text!r}; choose from {', '.join(known)}")
    return names


def read_task_dataset(demo: bool, fmt: str, events: Path | None, catalog: Path | None, user_features: Path | None,
                      item_features: Path | None, workdir: Path) -> tuple[Dataset, pl.DataFrame | None]:
    """The dataset the options name, and the demo shop's true session purchase probabilities (else None)."""
    if demo:
        if events is not None:
            raise ConfigError("--demo and --events exclude each other")
        files = generate_demo_shop(workdir / "demo-shop", DemoShopConfig())
        dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
        return dataset, pl.read_csv(files.sessions, columns=["session_id", "true_purchase_probability"])
    if events is None:
        raise ConfigError("give --events FILE (with --format) or --demo")
    if fmt == "taobao":
        if catalog is not None:
            raise ConfigError("--catalog belongs to --format csv; taobao items come from --item-features")
        return read_dataset("taobao", events, user_features_path=user_features, item_features_path=item_features), None
    if fmt != "csv":
        raise ConfigError(f"--format must be taobao or csv, got {fmt!r}")
    if user_features is not None or item_features is not None:
        raise ConfigError("--user-features and --item-features belong to --format taobao")
    return ingest_files(events, catalog).dataset, None


@reports_errors
def benchmark_tasks(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    demo: DemoOpt = False, fmt: FormatOpt = "taobao", events: EventsOpt = None, user_features: UserFeaturesOpt = None,
    item_features: ItemFeaturesOpt = None, catalog: CatalogOpt = None, horizon_days: HorizonOpt = None,
    tasks: TasksOpt = ",".join(TASKS),
    models: Annotated[str, typer.Option("--models", help="Comma-separated registered task models (default: all).")] = "",
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Folder for reliability diagrams (PNG).")] = None,
    threads: ThreadsOpt = 1,
) -> None:
    """Every task model against the baselines on the same out-of-time examples: AUC, PR-AUC, log-loss, ECE."""
    torch.set_num_threads(threads)
    config = TaskConfig(horizon_days=horizon_days)
    chosen_tasks = split_names(tasks, TASKS, "task(s)")
    chosen_models = split_names(models, list(MODEL_FACTORIES), "task model(s)") if models else None
    with tempfile.TemporaryDirectory() as workdir:
        dataset, truth = read_task_dataset(demo, fmt, events, catalog, user_features, item_features, Path(workdir))
        document = run_task_benchmark(dataset, tasks=chosen_tasks, models=chosen_models, config=config,
                                      session_truth=truth, plot_dir=plots)
    console.print(results_table(document))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")


def results_table(document: dict) -> Table:
    """Test metrics of every task and model, with the validation AUC the choices were made on."""
    table = Table(title=f"Task benchmark on {document['dataset']['name']} (test split, calibrated on valid)", title_justify="left")
    for column in ("task", "model", "AUC", "95% CI", "valid AUC", "PR-AUC", "log-loss", "ECE", "ECE raw", "base rate"):
        table.add_column(column, justify="right")
    valid = {(r["task"], r["model"]): r["metrics"]["auc"] for r in document["results"] if r["split"] == "valid"}
    for r in document["results"]:
        if r["split"] != "test":
            continue
        m, raw = r["metrics"], r.get("metrics_uncalibrated", {})
        rate = r["base_rate"] if isinstance(r["base_rate"], float) else max(r["base_rate"])
        table.add_row(r["task"], r["model"], f"{m['auc']:.3f}", f"{m['auc_ci'][0]:.3f}-{m['auc_ci'][1]:.3f}",
                      _num(valid.get((r["task"], r["model"]))), f"{m['pr_auc']:.3f}", f"{m['logloss']:.3f}",
                      f"{m['ece']:.3f}", _num(raw.get("ece")), f"{rate:.3f}")
    return table


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"
