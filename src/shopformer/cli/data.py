"""`shopformer data inspect|prepare`: look at a file, then turn it into a prepared dataset."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer

from shopformer.cli.common import (
    CatalogOpt,
    ConfigOpt,
    DelimiterOpt,
    EncodingOpt,
    EventColOpt,
    EventIdColOpt,
    EventMapOpt,
    ItemColOpt,
    PseudonymiseOpt,
    SessionColOpt,
    TimeColOpt,
    TimeFormatOpt,
    TombstonesOpt,
    UserColOpt,
    console,
    parse_pairs,
    pseudonymiser,
    reports_errors,
    stated_mapping,
    without_forgotten,
)
from shopformer.cli.report import show_columns, show_dataset_counts, show_ingest_report, show_streaming_summary
from shopformer.data.formats import FORMATS, read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.io import load_catalog
from shopformer.data.mapping import IngestConfig
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.pseudonym import pseudonymise_dataset, pseudonymise_ingested
from shopformer.data.scan import is_parquet_collection
from shopformer.data.streaming import prepare_parquet
from shopformer.errors import ConfigError

data_app = typer.Typer(help="Inspect and prepare event logs.", no_args_is_help=True)

FormatOpt = Annotated[
    Optional[str], typer.Option("--format", help=f"A public dataset format instead of a plain table: {', '.join(FORMATS)}.")
]
ExtraOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--with",
        help="Extra file of a --format, as name=PATH, repeatable "
        "(e.g. --with item_attributes_path=Beauty_item2attributes.json).",
    ),
]

INSPECT_EXAMPLES = """[bold]Examples[/]\n
  shopformer data inspect events.csv\n
  shopformer data inspect events.tsv --user-col visitor --time-format unix_ms --event-map pv=view\n
  shopformer data inspect Beauty.txt --format s3rec
"""
PREPARE_EXAMPLES = """[bold]Examples[/]\n
  shopformer data prepare events.parquet --catalog items.csv --out prepared/\n
  shopformer data prepare log.csv --config mapping.yaml --min-user-events 5 --min-item-events 5 --out prepared/\n
  shopformer data prepare ecomm_edge_train.txt --format taobao --with item_features_path=ecomm_item_feature.txt --out prepared/\n
  shopformer data prepare lake/events/ --min-user-events 5 --min-item-events 5 --out prepared/   (a Parquet folder: streamed)\n
  shopformer data prepare 'lake/events/*.parquet' --engine spark --spark-master local[4] --out prepared/\n
A folder or glob of Parquet files (or one file with --streaming) is prepared in bounded memory: only
integer codes are held, and the result is the same as the in-memory path's. --engine spark runs the
same preparation on Spark (local mode by default, or --spark-master for a cluster).
"""


class Engine(str, Enum):
    """Where the preparation runs."""

    local = "local"
    spark = "spark"


EngineOpt = Annotated[Engine, typer.Option("--engine", help="local (this process) or spark.", case_sensitive=False)]
StreamingOpt = Annotated[
    bool, typer.Option("--streaming", help="Stream a single Parquet file too (a folder or glob always is).")
]
SparkMasterOpt = Annotated[
    Optional[str], typer.Option("--spark-master", help="Spark master for --engine spark: local[N] (default: all cores) or spark://host:7077.")
]
SparkWorkOpt = Annotated[
    Optional[Path],
    typer.Option("--spark-work-dir", help="Folder for Spark's cleaned rows that executors and this machine reach (default: beside --out)."),
]


#: Parameters of `inspect` and `prepare` that state the event mapping.
MAPPING_FLAGS = ("user_col", "item_col", "time_col", "event_col", "session_col", "event_id_col",
                 "time_format", "event_map", "delimiter", "encoding")


def load_dataset(path: Path, fmt: str | None, extras: list[str] | None, catalog: Path | None, config: Path | None, flags: dict,
                 pseudonymise_key: Path | None = None, tombstones: Path | None = None):
    """A Dataset from a public format, or from a plain table with the stated/guessed mapping; with a
    key file, every user id in it (and in the ingestion report) is a pseudonym; users a tombstone
    file names are left out."""
    keys = pseudonymiser(pseudonymise_key)
    if fmt is not None:
        dataset = without_forgotten(read_dataset(fmt, path, **parse_pairs(extras, "--with", "name=PATH")), tombstones, keys)
        return (dataset if keys is None else pseudonymise_dataset(dataset, keys)), None
    stated, catalog_mapping = stated_mapping(config, **flags)
    ingested = ingest_files(path, catalog, stated=stated, catalog_mapping=catalog_mapping)
    ingested = replace(ingested, dataset=without_forgotten(ingested.dataset, tombstones, keys))
    if keys is not None:
        ingested = pseudonymise_ingested(ingested, keys)
    return ingested.dataset, ingested


@data_app.command("inspect", epilog=INSPECT_EXAMPLES)
@reports_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="Event file: CSV/TSV, Parquet or JSON Lines.")],
    fmt: FormatOpt = None, extras: ExtraOpt = None, catalog: CatalogOpt = None, config: ConfigOpt = None,
    user_col: UserColOpt = None, item_col: ItemColOpt = None, time_col: TimeColOpt = None,
    event_col: EventColOpt = None, session_col: SessionColOpt = None, event_id_col: EventIdColOpt = None,
    time_format: TimeFormatOpt = None, event_map: EventMapOpt = None, delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Show a file's columns, the mapping Shopformer would use, counts and every problem found."""
    flags = {name: value for name, value in locals().items() if name in MAPPING_FLAGS}
    dataset, ingested = load_dataset(path, fmt, extras, catalog, config, flags)
    if ingested is not None:
        show_columns(ingested.preview, ingested.column_nulls, ingested.config.events.model_dump())
        console.print(f"Event types: {ingested.result.event_type_mapping}")
        show_ingest_report(ingested.result)
    show_dataset_counts(dataset)


@data_app.command("prepare", epilog=PREPARE_EXAMPLES)
@reports_errors
def prepare_command(
    path: Annotated[Path, typer.Argument(
        help="Event file: CSV/TSV, Parquet or JSON Lines (or the main file of --format), or a folder or glob of Parquet files.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the prepared dataset to.")],
    fmt: FormatOpt = None, extras: ExtraOpt = None, catalog: CatalogOpt = None, config: ConfigOpt = None,
    user_col: UserColOpt = None, item_col: ItemColOpt = None, time_col: TimeColOpt = None,
    event_col: EventColOpt = None, session_col: SessionColOpt = None, event_id_col: EventIdColOpt = None,
    time_format: TimeFormatOpt = None, event_map: EventMapOpt = None, delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    min_user_events: Annotated[int, typer.Option(help="Iterative k-core: keep users with at least this many events.")] = 1,
    min_item_events: Annotated[int, typer.Option(help="Iterative k-core: keep items with at least this many events.")] = 1,
    session_gap: Annotated[int, typer.Option(help="Seconds of inactivity that start a new session.")] = 1800,
    keep_consecutive_duplicates: Annotated[bool, typer.Option(help="Keep repeated identical consecutive events.")] = False,
    pseudonymise_key: PseudonymiseOpt = None,
    tombstones: TombstonesOpt = None,
    engine: EngineOpt = Engine.local,
    streaming: StreamingOpt = False,
    spark_master: SparkMasterOpt = None,
    spark_work_dir: SparkWorkOpt = None,
) -> None:
    """Validate, clean, sessionize and encode an event log, and save it as a prepared dataset."""
    flags = {name: value for name, value in locals().items() if name in MAPPING_FLAGS}
    prepare_config = PrepareConfig(
        dedupe_consecutive=not keep_consecutive_duplicates, min_user_events=min_user_events,
        min_item_events=min_item_events, session_gap_seconds=session_gap,
    )
    if engine is Engine.local and (spark_master is not None or spark_work_dir is not None):
        raise ConfigError("--spark-master and --spark-work-dir apply to --engine spark only")
    if engine is Engine.spark or streaming or (fmt is None and is_parquet_collection(path)):
        if fmt is not None or pseudonymise_key is not None or tombstones is not None:
            raise ConfigError("--format, --pseudonymise-key and --tombstones need the in-memory path: give one file "
                              "without --streaming or --engine spark")
        spark = {"master": spark_master, "work_dir": spark_work_dir} if engine is Engine.spark else None
        return _prepare_streaming(path, out, prepare_config, config, flags, catalog, spark)
    dataset, ingested = load_dataset(path, fmt, extras, catalog, config, flags, pseudonymise_key, tombstones)
    if ingested is not None:
        show_ingest_report(ingested.result)
        ingested.result.write_report(out / "ingest")
    prepared = prepare(dataset, prepare_config, progress=True)
    prepared.save(out)
    if dataset.info.get("quarantined_lines"):
        # A format reader that quarantines lines (otto) leaves them where the ingestion report goes.
        (out / "ingest").mkdir(parents=True, exist_ok=True)
        pl.DataFrame(dataset.info["quarantined_lines"]).write_csv(out / "ingest" / "quarantine.csv")
    if ingested is not None:
        ingested.config.to_yaml(out / "ingest_config.yaml")
    show_dataset_counts(dataset.__class__(dataset.name, prepared.events, prepared.catalog))
    console.print(f"[green]Prepared dataset written to {out}[/]")


def _prepare_streaming(path: Path, out: Path, prepare_config: PrepareConfig, config: Path | None, flags: dict,
                       catalog: Path | None, spark: dict | None) -> None:
    """Parquet files to a prepared dataset in bounded memory, locally or (`spark` options given) on Spark."""
    stated, catalog_mapping = stated_mapping(config, **flags)
    items = load_catalog(catalog, catalog_mapping) if catalog is not None else None
    if spark is None:
        summary = prepare_parquet(path, out, prepare_config, stated=stated, catalog=items, progress=True)
    else:
        from shopformer.scale.spark_prepare import prepare_with_spark

        summary = prepare_with_spark(path, out, prepare_config, stated=stated, catalog=items, progress=True, **spark)
    IngestConfig(events=summary.mapping, catalog=catalog_mapping).to_yaml(out / "ingest_config.yaml")
    show_streaming_summary(summary)
    console.print(f"[green]Prepared dataset written to {out}[/]")
