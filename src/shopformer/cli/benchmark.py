"""`shopformer benchmark next-item`: the standard leave-one-out protocol, end to end, in one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shopformer.benchmark.next_item import MODELS, run_next_item_benchmark
from shopformer.benchmark.sessions import SESSION_MODELS, run_session_benchmark
from shopformer.cli.common import console, reports_errors
from shopformer.cli.model import ModelConfigOpt, SetOpt, resolved_configs
from shopformer.data.formats import read_dataset
from shopformer.errors import ConfigError

benchmark_app = typer.Typer(help="Benchmarks on public datasets, with the baselines in the same run.", no_args_is_help=True)

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark next-item --format s3rec --events ../shared/datasets/amazon-beauty/Beauty.txt \\
    --item-attributes ../shared/datasets/amazon-beauty/Beauty_item2attributes.json \\
    --item-titles ../shared/datasets/amazon-beauty/item_title_prefix.txt --json beauty.json\n
  shopformer benchmark next-item --format recbole --events ../shared/datasets/amazon-scientific --json scientific.json\n
  shopformer benchmark next-item --format sessions --events ../shared/datasets/diginetica/train_sessions.txt \\
    --test-cases ../shared/datasets/diginetica/test_prefix_target.txt --json diginetica.json
"""


@benchmark_app.command("next-item", epilog=EXAMPLES)
@reports_errors
def next_item(
    events: Annotated[Path, typer.Option("--events", help="s3rec: the sequence file; recbole: the folder or file prefix.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    fmt: Annotated[str, typer.Option("--format", help="s3rec, recbole or sessions (session lists + test cases).")] = "s3rec",
    item_attributes: Annotated[Optional[Path], typer.Option("--item-attributes", help="s3rec item2attributes.json.")] = None,
    item_titles: Annotated[Optional[Path], typer.Option("--item-titles", help="s3rec item_title_prefix.txt (needs the datamaps).")] = None,
    datamaps: Annotated[Optional[Path], typer.Option("--datamaps", help="s3rec datamaps.json (default: beside --events).")] = None,
    test_cases: Annotated[Optional[Path], typer.Option("--test-cases", help="sessions: the `prefix<TAB>target` test file.")] = None,
    models: Annotated[Optional[str], typer.Option("--models", help=f"Comma-separated, from {', '.join(MODELS)} "
                                                                   f"(sessions: {', '.join(SESSION_MODELS)}); default all.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Training budget per Transformer model.")] = None,
    model_config: ModelConfigOpt = None, overrides: SetOpt = None,
) -> None:
    """Train on the training part, early-stop on validation, report test metrics of every model."""
    configs = resolved_configs(model_config, overrides, max_minutes)
    chosen = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if fmt == "sessions":
        if item_attributes or item_titles or datamaps:
            raise ConfigError("--item-attributes, --item-titles and --datamaps belong to --format s3rec")
        if test_cases is None:
            raise ConfigError("--format sessions needs --test-cases (the prefix<TAB>target file)")
        dataset = read_dataset("sessions", events, test_path=test_cases)
        table = _session_table(dataset.name)
        document = run_session_benchmark(dataset, models=chosen or SESSION_MODELS, model_overrides=configs["model"],
                                         train_overrides=configs["train"], on_result=lambda result: _add_session_row(table, result))
    else:
        if test_cases is not None:
            raise ConfigError("--test-cases belongs to --format sessions")
        dataset = read_benchmark_dataset(fmt, events, item_attributes, item_titles, datamaps)
        table = _results_table(dataset.name)
        document = run_next_item_benchmark(dataset, models=chosen or MODELS, model_overrides=configs["model"],
                                           train_overrides=configs["train"], on_result=lambda result: _add_row(table, result))
    console.print(table)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")


def read_benchmark_dataset(fmt: str, events: Path, item_attributes: Path | None, item_titles: Path | None, datamaps: Path | None):
    """A benchmark dataset in the s3rec or recbole format, with its side files."""
    if fmt == "recbole":
        if item_attributes or item_titles or datamaps:
            raise ConfigError("--item-attributes, --item-titles and --datamaps belong to --format s3rec")
        return read_dataset("recbole", events)
    if fmt != "s3rec":
        raise ConfigError(f"--format must be s3rec or recbole, got {fmt!r}")
    if datamaps is None and item_titles is not None and (events.parent / "datamaps.json").is_file():
        datamaps = events.parent / "datamaps.json"
    return read_dataset("s3rec", events, item_attributes_path=item_attributes, datamaps_path=datamaps,
                        item_titles_path=item_titles)


def _results_table(name: str) -> Table:
    table = Table(title=f"Next-item benchmark on {name} (leave-one-out, full ranking, pessimistic ties)", title_justify="left")
    for column in ("model", "split", "HR@10", "NDCG@10", "HR@10 seen-filtered", "NDCG@10 seen-filtered", "train s", "epochs"):
        table.add_column(column, justify="right")
    return table


def _add_row(table: Table, result: dict) -> None:
    m, f = result["metrics"], result["metrics_seen_filtered"]
    table.add_row(result["model"], result["split"], f"{m['hr@10']:.4f}", f"{m['ndcg@10']:.4f}", f"{f['hr@10']:.4f}",
                  f"{f['ndcg@10']:.4f}", f"{result['train_seconds']:.0f}", str(result["epochs"] or "-"))
    console.print(f"{result['model']} {result['split']}: HR@10 {m['hr@10']:.4f} NDCG@10 {m['ndcg@10']:.4f} "
                  f"(seen filtered {f['hr@10']:.4f} / {f['ndcg@10']:.4f})")


def _session_table(name: str) -> Table:
    table = Table(title=f"Session next-item benchmark on {name} (shipped test cases, full ranking, pessimistic ties)",
                  title_justify="left")
    for column in ("model", "split", "P@20", "MRR@20", "HR@10", "NDCG@10", "cases", "train s", "epochs"):
        table.add_column(column, justify="right")
    return table


def _add_session_row(table: Table, result: dict) -> None:
    m = result["metrics"]
    table.add_row(result["model"], result["split"], f"{result['p@20']:.2f}", f"{result['mrr@20']:.2f}", f"{m['hr@10']:.4f}",
                  f"{m['ndcg@10']:.4f}", str(result["n_cases"]), f"{result['train_seconds']:.0f}", str(result["epochs"] or "-"))
    console.print(f"{result['model']} {result['split']}: P@20 {result['p@20']:.2f} MRR@20 {result['mrr@20']:.2f}")
