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
from threadpoolctl import threadpool_limits

from shopformer.benchmark.tasks import run_task_benchmark
from shopformer.cli.common import PseudonymiseOpt, TombstonesOpt, console, pseudonymiser, reports_errors, without_forgotten
from shopformer.cli.report import show_table
from shopformer.data.formats import FORMATS, read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.pseudonym import pseudonymise_dataset
from shopformer.data.schema import Dataset
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError
from shopformer.tasks.base import TASKS
from shopformer.tasks.examples import TaskConfig
from shopformer.tasks.registry import MODEL_FACTORIES

DemoOpt = Annotated[bool, typer.Option("--demo", help="Use the bundled demo shop (generated on the fly).")]
FormatOpt = Annotated[str, typer.Option("--format", help="taobao (multi-behaviour edges), csv (the event contract, "
                                                          "columns recognised by name), another format of `shopformer "
                                                          "data --format` (e.g. otto) or auto (from the first line).")]
EventsOpt = Annotated[Optional[Path], typer.Option("--events", help="Event file: taobao edges or a CSV/Parquet/JSONL log.")]
UserFeaturesOpt = Annotated[Optional[Path], typer.Option("--user-features", help="taobao: the user feature file.")]
ItemFeaturesOpt = Annotated[Optional[Path], typer.Option("--item-features", help="taobao: the item feature file.")]
CatalogOpt = Annotated[Optional[Path], typer.Option("--catalog", help="csv: the catalog file.")]
HorizonOpt = Annotated[
    Optional[int],
    typer.Option("--horizon-days", help="Label window h of propensity and churn (default: a fifth of the log, 1-7 days; "
                                        "a log of hours: the minutes its last fifth of the events takes)."),
]
TasksOpt = Annotated[str, typer.Option("--tasks", help=f"Comma-separated, from {', '.join(TASKS)}.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="Torch and BLAS threads (LightGBM uses one).")]

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
                      item_features: Path | None, workdir: Path, pseudonymise_key: Path | None = None,
                      tombstones: Path | None = None) -> tuple[Dataset, pl.DataFrame | None]:
    """The dataset the options name (user ids pseudonymised with a key file), and the demo shop's true
    session purchase probabilities (else None)."""
    dataset, truth = _read_task_dataset(demo, fmt, events, catalog, user_features, item_features, workdir)
    keys = pseudonymiser(pseudonymise_key)
    dataset = without_forgotten(dataset, tombstones, keys)
    return (dataset if keys is None else pseudonymise_dataset(dataset, keys)), truth


def _read_task_dataset(demo: bool, fmt: str, events: Path | None, catalog: Path | None, user_features: Path | None,
                       item_features: Path | None, workdir: Path) -> tuple[Dataset, pl.DataFrame | None]:
    if demo:
        if events is not None:
            raise ConfigError("--demo and --events exclude each other")
        files = generate_demo_shop(workdir / "demo-shop", DemoShopConfig())
        dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
        return dataset, pl.read_csv(files.sessions, columns=["session_id", "true_purchase_probability"])
    if events is None:
        raise ConfigError("give --events FILE (with --format) or --demo")
    fmt = _detected_format(events) if fmt == "auto" else fmt
    if fmt not in ("csv", *FORMATS):
        raise ConfigError(f"--format must be csv, auto or one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "taobao":
        if catalog is not None:
            raise ConfigError("--catalog belongs to --format csv; taobao items come from --item-features")
        return read_dataset("taobao", events, user_features_path=user_features, item_features_path=item_features), None
    if user_features is not None or item_features is not None:
        raise ConfigError("--user-features and --item-features belong to --format taobao")
    if fmt == "csv":
        return ingest_files(events, catalog).dataset, None
    if catalog is not None:
        raise ConfigError(f"--catalog belongs to --format csv; --format {fmt} reads only --events")
    return read_dataset(fmt, events), None


def _detected_format(events: Path) -> str:
    """taobao when the first line is a Taobao edge (four tab-separated numbers), otto when it is an OTTO
    session object, else csv (a table with a header, or JSON Lines events)."""
    try:
        with events.open("rb") as handle:
            line = handle.readline().decode("utf-8", errors="replace").strip()
    except OSError:
        return "csv"  # the csv reader names the file and what is wrong with it
    first = line.split("\t")
    if len(first) == 4 and all(field.isdigit() for field in first):
        return "taobao"
    return "otto" if line.startswith("{") and '"session"' in line and '"events"' in line else "csv"


@reports_errors
def benchmark_tasks(
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    demo: DemoOpt = False, fmt: FormatOpt = "auto", events: EventsOpt = None, user_features: UserFeaturesOpt = None,
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
    # BLAS threads too: numpy/scikit-learn solves slow down badly when their threads contend with torch's.
    with tempfile.TemporaryDirectory() as workdir, threadpool_limits(limits=threads):
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


TRAIN_EXAMPLES = """[bold]Examples[/]\n
  shopformer train-tasks --demo --bundle shopformer-output/quickstart/bundle\n
  shopformer train-tasks events.csv --catalog items.csv --bundle bundle/ --tasks intent,churn --horizon-days 14\n
  shopformer train-tasks ecomm_edge_train.txt --format taobao --item-features ecomm_item_feature.txt --bundle bundle/
"""

PREDICT_EXAMPLES = """[bold]Examples[/]\n
  shopformer predict intent --bundle bundle/ --top 10                    # the sessions most likely to buy
  shopformer predict churn --bundle bundle/ --user u17 --user u42
  shopformer predict intent --bundle bundle/ --session s000123 --out intent.csv
  shopformer predict next-event-type --bundle bundle/ --user u17
"""


@reports_errors
def train_tasks(
    bundle: Annotated[Path, typer.Option("--bundle", help="The model bundle the task models are added to (its tasks/ folder).")],
    events: Annotated[Optional[Path], typer.Argument(help="Event log (csv: the event contract; taobao: the edge file).")] = None,
    demo: DemoOpt = False, fmt: FormatOpt = "csv", catalog: CatalogOpt = None, user_features: UserFeaturesOpt = None,
    item_features: ItemFeaturesOpt = None, horizon_days: HorizonOpt = None, tasks: TasksOpt = ",".join(TASKS),
    model: Annotated[Optional[str], typer.Option("--model", help="Registered task model (default: shopformer, else lightgbm).")] = None,
    threads: ThreadsOpt = 1,
    pseudonymise_key: PseudonymiseOpt = None,
    tombstones: TombstonesOpt = None,
) -> None:
    """Fit calibrated task models (purchase intent, propensity, churn, next event type) into a bundle."""
    from shopformer.predict.tasks import TaskPredictor, bundle_shared, default_model

    torch.set_num_threads(threads)
    if not (bundle / "bundle.json").is_file():
        raise ConfigError(f"{bundle} is not a Shopformer bundle (no bundle.json): train one first with `shopformer train`")
    model = split_names(model, list(MODEL_FACTORIES), "task model")[0] if model else default_model()
    chosen = tuple(split_names(tasks, TASKS, "task(s)"))
    with tempfile.TemporaryDirectory() as workdir, threadpool_limits(limits=threads):
        dataset, _ = read_task_dataset(demo, fmt, events, catalog, user_features, item_features, Path(workdir), pseudonymise_key,
                                       tombstones)
        predictor = TaskPredictor.fit(dataset, chosen, model=model, config=TaskConfig(horizon_days=horizon_days),
                                      shared=bundle_shared(bundle, model))
    folder = predictor.save(bundle)
    table = Table(title=f"Task models in {folder} (test split of the fitting log)", title_justify="left")
    for column in ("task", "model", "train examples", "test AUC", "test ECE"):
        table.add_column(column, justify="right")
    for task, info in predictor.info.items():
        table.add_row(task, info["model"], str(info["n_train"]), _num(info["test_metrics"]["auc"]), _num(info["test_metrics"]["ece"]))
    console.print(table)


@reports_errors
def predict(
    task: Annotated[str, typer.Argument(help=f"One of {', '.join(TASKS)}.")],
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle with task models (shopformer train-tasks).")],
    users: Annotated[Optional[list[str]], typer.Option("--user", help="User id, repeatable (default: every user).")] = None,
    sessions: Annotated[Optional[list[str]], typer.Option("--session", help="intent: session id, repeatable.")] = None,
    top: Annotated[Optional[int], typer.Option("--top", help="Only the most likely rows.", min=1)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the table as CSV (else it is printed).")] = None,
    pseudonymise_key: PseudonymiseOpt = None,
) -> None:
    """Probabilities of one task for users or sessions, at the end of the bundle's task data (raw user
    ids with the bundle's key file; the other users are listed by their pseudonyms)."""
    from shopformer.predict.tasks import TaskPredictor

    predictor = TaskPredictor.load(bundle)
    keys = pseudonymiser(pseudonymise_key)
    stored = users if keys is None or users is None else [keys.pseudonym(u) for u in users]
    table = predictor.predict_proba(task, users=stored, sessions=sessions)
    if stored is not users and "user_id" in table.columns:
        table = table.with_columns(pl.col("user_id").replace(dict(zip(stored, users, strict=True))))
    score = "probability" if "probability" in table.columns else "p_purchase"
    table = table.sort(score, descending=True) if score in table.columns else table
    table = table.head(top) if top else table
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write_csv(out)
        console.print(f"[green]{table.height} rows written to {out}[/]")
    else:
        show_table(table, f"{task} at the end of the bundle's task data")

