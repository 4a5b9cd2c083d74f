"""`shopformer data prepare --engine spark`: the preparation executed by Spark, for events in a Parquet lake.

The result is the same prepared dataset as the local path's (`data.streaming.prepare_parquet`):
- each row is judged by the local scan's own Polars expressions (`canonical_events`, inside
  `mapInArrow`), under one `ScanPlan` (mapping, time format, event types) decided on the driver from
  the same first values and distinct event types;
- the steps over many rows (consecutive duplicates, iterative k-core, sessions) are Spark windows
  over each user's events in time order;
- ties are broken as locally: the local path keeps the input order (files in name order, then rows
  in file order), and here every row carries its `_metadata.file_path` and `_metadata.row_index`,
  the last two keys of every ordering, so the order is total and the same;
- Spark writes the cleaned rows sorted to `work_dir`, and the driver encodes them and writes the
  prepared dataset with the local writer (`save_encoded`).

On a cluster `work_dir` must be a folder both the executors and the driver reach (it defaults to a
folder beside `out`, right for local mode); every executor needs Shopformer installed.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from shopformer.data.prepare import is_sorted_by_user_time
from shopformer.data.prepared import PrepareConfig, StepRecorder, progress_display, vocabulary_of
from shopformer.data.scan import ScanPlan, canonical_events, encode_events, plan_scan, resolve_scan_mapping
from shopformer.data.schema import Catalog
from shopformer.data.streaming import PreparedSummary, dataset_name, save_encoded
from shopformer.data.validate import reason_details, write_ingest_report
from shopformer.errors import ConfigError, DataError
from shopformer.scale.spark_session import spark_session

__all__ = ["prepare_with_spark"]

#: Columns every row carries to break ties as the local path does (input order).
_FILE, _ROW = "__file__", "__row__"
_TIME_SAMPLE = 2000


@dataclass(frozen=True)
class _CanonicalBatches:
    """The `mapInArrow` function: each Arrow batch through `canonical_events`, with its tie-break keys."""

    plan: ScanPlan
    schema: pa.Schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            checked = canonical_events(frame.drop(_FILE, _ROW), self.plan).with_columns(frame[_FILE], frame[_ROW])
            yield from checked.to_arrow().cast(self.schema).to_batches()


def _arrow_schema(plan: ScanPlan) -> pa.Schema:
    numbers = [pa.field(f, pa.float64()) for f in plan.numeric_fields]
    return pa.schema([pa.field("user_id", pa.string()), pa.field("item_id", pa.string()), pa.field("timestamp", pa.int64()),
                      pa.field("event_type", pa.string()), *numbers, pa.field("reason", pa.string()),
                      pa.field(_FILE, pa.string()), pa.field(_ROW, pa.int64())])


def _spark_schema(schema: pa.Schema) -> str:
    types = {pa.string(): "string", pa.int64(): "bigint", pa.float64(): "double"}
    return ", ".join(f"{field.name} {types[field.type]}" for field in schema)


def _read(spark, source: str):
    from pyspark.sql import functions as F

    try:
        raw = (spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.{parquet,pq}")
               .parquet(str(source)))
    except Exception as exc:  # Spark raises its own analysis errors for a missing or unreadable path
        raise DataError(f"cannot be read as Parquet by Spark ({type(exc).__name__})", path=str(source),
                        expected="a folder or glob of .parquet files") from None
    if not hasattr(raw, "toArrow"):
        raise ConfigError("the Spark engine of `data prepare` needs PySpark 4 or later: pip install 'pyspark>=4,<5'")
    return raw.withColumn(_FILE, F.col("_metadata.file_path")).withColumn(_ROW, F.col("_metadata.row_index"))


def _plan(raw, stated: dict, source: str, now: int | None) -> ScanPlan:
    """The plan, from the same values the local scan reads: the first times in input order, the event types."""
    from pyspark.sql import functions as F

    mapping = resolve_scan_mapping([c for c in raw.columns if c not in (_FILE, _ROW)], stated, source)
    sample = (raw.where(F.col(mapping.time_col).isNotNull()).orderBy(_FILE, _ROW).select(mapping.time_col)
              .limit(_TIME_SAMPLE).toArrow())
    values = None if mapping.event_col is None else raw.select(mapping.event_col).distinct().toArrow()
    return plan_scan(mapping, pl.from_arrow(sample), None if values is None else pl.from_arrow(values), now)


def _ordered(*partition: str):
    from pyspark.sql import Window

    return Window.partitionBy(*partition).orderBy("timestamp", _FILE, _ROW)


def _dedupe(frame):
    from pyspark.sql import functions as F

    by_user = _ordered("user_id")
    repeat = (F.lag("item_id").over(by_user).eqNullSafe(F.col("item_id"))
              & F.lag("event_type").over(by_user).eqNullSafe(F.col("event_type"))
              & F.lag("user_id").over(by_user).isNotNull())
    # Spark evaluates window functions in a projection, not in a filter.
    return frame.withColumn("__repeat__", repeat).where(~F.col("__repeat__")).drop("__repeat__")


def _materialised(frame) -> tuple[object, int]:
    """`frame` computed once (later steps start from it, not from the whole lineage) and its rows."""
    frame = frame.localCheckpoint()
    return frame, frame.count()


def _kcore(frame, rows: int, config: PrepareConfig):
    """Iterative k-core: the kept rows, their number and the passes that dropped rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if config.min_user_events == 1 and config.min_item_events == 1:
        return frame, rows, 0
    enough = ((F.count(F.lit(1)).over(Window.partitionBy("user_id")) >= config.min_user_events)
              & (F.count(F.lit(1)).over(Window.partitionBy("item_id")) >= config.min_item_events))
    iterations = 0
    while True:
        kept, kept_rows = _materialised(frame.withColumn("__enough__", enough).where("__enough__").drop("__enough__"))
        if kept_rows == rows:
            return frame, rows, iterations
        frame, rows, iterations = kept, kept_rows, iterations + 1


def _sessions(frame, gap: int):
    """Adds `session` (each user's sessions numbered from 0); returns it with the number of sessions."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = _ordered("user_id")
    previous = F.lag("timestamp").over(by_user)
    frame = frame.withColumn("__start__", (previous.isNull() | ((F.col("timestamp") - previous) > gap)).cast("int"))
    running = F.sum("__start__").over(by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    numbered = frame.withColumn("session", (running - 1).cast("int")).localCheckpoint()
    sessions = numbered.select(F.sum("__start__")).first()[0] or 0
    return numbered.drop("__start__"), int(sessions)


def _quarantine(checked, out_dir: Path, plan: ScanPlan, source: str) -> tuple[int, dict[str, int]]:
    """Rows read and quarantine counts; the quarantined rows as CSV parts in `out_dir/quarantine/`."""
    from pyspark.sql import functions as F

    counted = {row["reason"]: row["count"] for row in checked.groupBy("reason").count().collect()}
    rows_read = sum(counted.values())
    counts = dict(sorted(((r, n) for r, n in counted.items() if r is not None), key=lambda pair: (-pair[1], pair[0])))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_ingest_report(out_dir, source=source, rows_read=rows_read, accepted=counted.get(None, 0), quarantined=counts,
                        time_format=plan.time_format, time_resolution=plan.time_resolution,
                        event_type_mapping=plan.event_type_mapping)
    if counts:
        detail = F.create_map(*(F.lit(x) for pair in reason_details(plan.time_format).items() for x in pair))
        rejected = checked.where(F.col("reason").isNotNull()).withColumn("detail", detail[F.col("reason")])
        rejected.select(_FILE, _ROW, "reason", "detail", *[c for c in checked.columns if c not in (_FILE, _ROW, "reason")]) \
            .write.mode("overwrite").option("header", "true").csv((out_dir / "quarantine").resolve().as_uri())
    return rows_read, counts


def prepare_with_spark(source: str | Path, out: str | Path, config: PrepareConfig | None = None, *, stated: dict | None = None,
                       catalog: Catalog | None = None, name: str | None = None, master: str | None = None,
                       workers: int | None = None, work_dir: str | Path | None = None, progress: bool = False,
                       now: int | None = None) -> PreparedSummary:
    """`prepare_parquet` with Spark doing the reading, validation and the steps over many rows, on
    `master` (default: local mode on `workers` cores); the same prepared dataset in `out`."""
    config, out = config or PrepareConfig(), Path(out)
    work = Path(work_dir) if work_dir is not None else out.parent / f".{out.name}-spark-events"
    with spark_session(master, workers, app_name="shopformer-prepare") as spark, warnings.catch_warnings():
        # PySpark warns about pandas 3 whenever an Arrow path starts, though this one uses no pandas.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        raw = _read(spark, source)
        plan = _plan(raw, stated or {}, str(source), now)
        schema = _arrow_schema(plan)
        columns = [*plan.source_columns(), _FILE, _ROW]
        checked = raw.select(*columns).mapInArrow(_CanonicalBatches(plan, schema), _spark_schema(schema)).localCheckpoint()
        rows_read, quarantined = _quarantine(checked, out / "ingest", plan, str(source))
        display = progress_display(progress)
        with display:
            steps = StepRecorder(display, display.add_task("spark", total=7 if catalog is not None else 6))
            frame = _spark_steps(checked.where("reason IS NULL").drop("reason"), config, plan, steps, rows_read - sum(quarantined.values()))
            frame.orderBy("user_id", "timestamp", _FILE, _ROW).drop(_FILE, _ROW).write.mode("overwrite").parquet(work.resolve().as_uri())
            try:
                return _save(work, out, plan, steps, config, catalog, name or dataset_name(source), (rows_read, quarantined))
            finally:
                shutil.rmtree(work, ignore_errors=True)


def _spark_steps(frame, config: PrepareConfig, plan: ScanPlan, steps: StepRecorder, rows: int):
    """sort, dedupe, min_count and sessionize as Spark jobs, each recorded under the local step's name
    with the same counts."""
    # Range partitions of users, each in time order: the order the windows below read them in.
    by_user = frame.repartitionByRange("user_id").sortWithinPartitions("user_id", "timestamp", _FILE, _ROW)
    frame = steps.run("sort", lambda: (_materialised(by_user)[0], rows, {}), rows)
    if config.dedupe_consecutive:
        kept, kept_rows = steps.run("dedupe", lambda: _removed(_materialised(_dedupe(frame)), rows), rows)
        frame, rows = kept, kept_rows

    def kcore():
        kept, kept_rows, iterations = _kcore(frame, rows, config)
        return (kept, kept_rows), kept_rows, {"removed": rows - kept_rows, "iterations": iterations}

    frame, rows = steps.run("min_count", kcore, rows)
    gap = 0 if plan.time_resolution == "day" else config.session_gap_seconds

    def sessionize():
        numbered, sessions = _sessions(frame, gap)
        return numbered, rows, {"sessions": sessions}

    return steps.run("sessionize", sessionize, rows)


def _removed(result: tuple[object, int], rows_in: int):
    frame, rows_out = result
    return (frame, rows_out), rows_out, {"removed": rows_in - rows_out}


def _save(work: Path, out: Path, plan: ScanPlan, steps: StepRecorder, config: PrepareConfig, catalog: Catalog | None,
          name: str, ingested: tuple[int, dict[str, int]]) -> PreparedSummary:
    """The driver's part: Spark's sorted rows encoded and written by the local writer."""
    parts = sorted(str(p) for p in work.glob("*.parquet"))
    if not parts:
        raise DataError("Spark wrote no events", path=str(work))
    vocabulary = vocabulary_of(plan.event_types()).classes.to_list()
    numbers = [pl.col(f) for f in plan.numeric_fields]
    encoded = encode_events(pl.scan_parquet(parts), vocabulary, str(work), *numbers, pl.col("session"))
    if not is_sorted_by_user_time(encoded.frame):
        raise DataError("Spark's output is not in user and time order", path=str(work))
    return save_encoded(encoded.frame, encoded, out, steps, plan=plan, name=name, catalog=catalog, config=config,
                        ingested=ingested)
