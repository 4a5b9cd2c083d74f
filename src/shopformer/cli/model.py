"""`shopformer train | evaluate | recommend`: fit a bundle on a log, measure it, ask it for items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import polars as pl
import typer
from rich.table import Table

from shopformer.cli.common import (
    CatalogOpt,
    ConfigOpt,
    EventColOpt,
    ItemColOpt,
    PseudonymiseOpt,
    TimeColOpt,
    TimeFormatOpt,
    TombstonesOpt,
    UserColOpt,
    console,
    fresh_file,
    parse_pairs,
    pseudonymiser,
    reports_errors,
    without_forgotten,
)
from shopformer.cli.data import ExtraOpt, FormatOpt, load_dataset
from shopformer.cli.report import show_table, show_training_result
from shopformer.config import load_sections
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.pseudonym import pseudonymise_dataset
from shopformer.data.synth import generate_demo_shop
from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer
from shopformer.train.distributed import joined_process_group

MAPPING_FLAGS = ("user_col", "item_col", "time_col", "event_col", "time_format")

PathArg = Annotated[Optional[Path], typer.Argument(help="Event file (CSV/TSV, Parquet, JSON Lines) or the main file of --format.")]
BundleOpt = Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train`.")]
DemoOpt = Annotated[bool, typer.Option("--demo", help="Use the bundled demo shop instead of a file.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        help="Config override section.key=value, repeatable (e.g. --set model.layers=3 --set train.lr=0.002).",
    ),
]
ModelConfigOpt = Annotated[Optional[Path], typer.Option("--model-config", help="YAML file with `model:` and `train:` sections.")]

TRAIN_EXAMPLES = """[bold]Examples[/]\n
  shopformer train --demo --out bundle/\n
  shopformer train events.csv --catalog items.csv --out bundle/ --max-minutes 20\n
  shopformer train Beauty.txt --format s3rec --with item_attributes_path=Beauty_item2attributes.json --out bundle/ --set model.dim=128\n
  torchrun --nproc-per-node 2 -m shopformer train --demo --out bundle/   [dim](data-parallel, same global batch)[/]\n
  shopformer train --demo --out bundle/ --launcher ray --workers 2 [--ray-address auto]
"""

LAUNCHERS = ("process", "ray")
LauncherOpt = Annotated[
    str, typer.Option("--launcher", help="process: this process (each rank, under torchrun); ray: Ray Train workers.")
]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help="Ray Train workers (default 2).")]
RayAddressOpt = Annotated[
    Optional[str], typer.Option("--ray-address", help="Ray cluster to train on (auto, ray://head:10001); default: a local Ray.")
]
RayStorageOpt = Annotated[
    Optional[str], typer.Option("--ray-storage", help="Folder or URI every Ray node reaches, for the run's checkpoint.")
]


def resolved_configs(
    config_file: Path | None, overrides: list[str] | None, max_minutes: float | None = None
) -> dict[str, dict[str, Any]]:
    """`{"model": {...}, "train": {...}}` from a YAML file, `section.key=value` overrides on top,
    and `--max-minutes` on top of those."""
    sections = load_sections(("model", "train"), config_file, parse_pairs(overrides, "--set", "section.key=value"))
    if max_minutes is not None:
        sections["train"]["max_minutes"] = max_minutes
    return sections


def _dataset(path: Path | None, demo: bool, fmt, extras, catalog, config, flags: dict, out_dir: Path | None,
             pseudonymise_key: Path | None = None, tombstones: Path | None = None):
    if demo == (path is not None):
        raise ConfigError("give either an event file or --demo")
    if demo:
        files = generate_demo_shop(out_dir)
        dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
        keys = pseudonymiser(pseudonymise_key)
        dataset = without_forgotten(dataset, tombstones, keys)
        return dataset if keys is None else pseudonymise_dataset(dataset, keys)
    return load_dataset(path, fmt, extras, catalog, config, flags, pseudonymise_key, tombstones)[0]


@reports_errors
def train(
    path: PathArg = None,
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write.")] = Path("shopformer-output/bundle"),
    demo: DemoOpt = False, fmt: FormatOpt = None, extras: ExtraOpt = None, catalog: CatalogOpt = None,
    config: ConfigOpt = None, user_col: UserColOpt = None, item_col: ItemColOpt = None, time_col: TimeColOpt = None,
    event_col: EventColOpt = None, time_format: TimeFormatOpt = None,
    model_config: ModelConfigOpt = None, overrides: SetOpt = None,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Training time budget.")] = None,
    min_user_events: Annotated[int, typer.Option(help="Iterative k-core: keep users with at least this many events.")] = 1,
    min_item_events: Annotated[int, typer.Option(help="Iterative k-core: keep items with at least this many events.")] = 1,
    pseudonymise_key: PseudonymiseOpt = None,
    tombstones: TombstonesOpt = None,
    dp_epsilon: Annotated[
        Optional[float], typer.Option("--dp-epsilon", min=0.01, help="User-level differential privacy: the epsilon to spend.")
    ] = None,
    launcher: LauncherOpt = "process", workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None, ray_storage: RayStorageOpt = None,
) -> None:
    """Train the behaviour Transformer on an event log and save it as a bundle.

    Under torchrun every rank trains on its share of each batch and rank 0 writes the bundle.
    """
    flags = {name: value for name, value in locals().items() if name in MAPPING_FLAGS}
    _check_launcher(launcher, workers, ray_address, ray_storage)
    configs = resolved_configs(model_config, overrides, max_minutes)
    if dp_epsilon is not None:
        configs["train"]["dp_epsilon"] = dp_epsilon
    estimator = Shopformer(model=configs["model"], train=configs["train"])
    with joined_process_group() as ranks:
        if launcher == "ray" and ranks.distributed:
            raise ConfigError("--launcher ray starts its own workers: run it without torchrun")
        with ranks.main_first():  # rank 0 writes the demo shop's files before the others read them
            dataset = _dataset(path, demo, fmt, extras, catalog, config, flags, out.parent / "demo-shop", pseudonymise_key, tombstones)
            prepared = prepare(dataset, PrepareConfig(min_user_events=min_user_events, min_item_events=min_item_events),
                               progress=ranks.is_main)
        if ranks.is_main:
            console.print("Config:", json.dumps(estimator.get_params()["model"]), json.dumps(estimator.get_params()["train"]))
        if launcher == "ray":
            from shopformer.scale.ray_train import fit_with_ray

            estimator = fit_with_ray(prepared, out, model=configs["model"], train=configs["train"], workers=workers or 2,
                                     address=ray_address, storage=ray_storage)
        else:
            estimator.fit(prepared, metrics_path=fresh_file(out / "metrics.jsonl") if ranks.is_main else None)
            if not ranks.is_main:
                return
            estimator.save(out)
    show_training_result(estimator, out)


def _check_launcher(launcher: str, workers: int | None, ray_address: str | None, ray_storage: str | None) -> None:
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher != "ray" and (workers, ray_address, ray_storage) != (None, None, None):
        raise ConfigError("--workers, --ray-address and --ray-storage go with --launcher ray")


@reports_errors
def evaluate(
    path: PathArg = None, bundle: BundleOpt = Path("shopformer-output/bundle"), demo: DemoOpt = False,
    fmt: FormatOpt = None, extras: ExtraOpt = None, catalog: CatalogOpt = None, config: ConfigOpt = None,
    user_col: UserColOpt = None, item_col: ItemColOpt = None, time_col: TimeColOpt = None,
    event_col: EventColOpt = None, time_format: TimeFormatOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON.")] = None,
    pseudonymise_key: PseudonymiseOpt = None,
) -> None:
    """Rank each user's last event of a log against all items, given the events before it.

    [bold]Example[/]: shopformer evaluate events_next_week.csv --bundle bundle/
    """
    flags = {name: value for name, value in locals().items() if name in MAPPING_FLAGS}
    estimator = Shopformer.load(bundle)
    dataset = _dataset(path, demo, fmt, extras, catalog, config, flags, bundle.parent / "demo-shop", pseudonymise_key)
    results = {f"filter_seen={flag}": estimator.evaluate(dataset, filter_seen=flag, progress=True) for flag in (False, True)}
    table = Table(title=f"Next-item evaluation of {bundle} (full ranking, pessimistic ties)", title_justify="left")
    for column in ("candidates", "users", "unknown targets", "HR@10", "NDCG@10", "MRR@10", "coverage@10"):
        table.add_column(column, justify="right")
    for name, m in results.items():
        table.add_row("history items removed" if "True" in name else "all items", str(m["n_users"]), str(m["unknown_targets"]),
                      f"{m['hr@10']:.4f}", f"{m['ndcg@10']:.4f}", f"{m['mrr@10']:.4f}", f"{m['coverage@10']:.3f}")
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=1), encoding="utf-8")


@reports_errors
def recommend(
    bundle: BundleOpt = Path("shopformer-output/bundle"),
    users: Annotated[Optional[list[str]], typer.Option("--user", help="User id, repeatable.")] = None,
    session: Annotated[Optional[str], typer.Option("--session", help="Comma-separated item ids of an anonymous session.")] = None,
    k: Annotated[int, typer.Option("-k", help="Items per user.")] = 10,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="Allow items already in the history.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the table as CSV or Parquet.")] = None,
    pseudonymise_key: PseudonymiseOpt = None,
) -> None:
    """Top-k items for known users or for an anonymous session (raw user ids, with the bundle's key file).

    [bold]Examples[/]: shopformer recommend --bundle bundle/ --user u17 --user u42 -k 5\n
    shopformer recommend --bundle bundle/ --session sku-1,sku-7
    """
    if (users is None) == (session is None):
        raise ConfigError("give --user (repeatable) or --session, not both")
    estimator = Shopformer.load(bundle)
    if users is not None:
        keys = pseudonymiser(pseudonymise_key)
        stored = users if keys is None else [keys.pseudonym(u) for u in users]
        table = estimator.recommend(users=stored, k=k, filter_seen=not keep_seen)
        table = table.with_columns(user_id=pl.col("user_id").replace_strict(dict(zip(stored, users, strict=True))))
    else:
        table = estimator.recommend(sequences=[[i.strip() for i in session.split(",") if i.strip()]], k=k, filter_seen=not keep_seen)
    show_table(table, f"Recommendations of {bundle}")
    if out is not None:
        (table.write_parquet if out.suffix == ".parquet" else table.write_csv)(out)
