"""Batch scoring on Spark: `mapInArrow` over a DataFrame of user ids, one loaded bundle per partition.

The driver checks the bundle, lists the users and hands Spark a DataFrame of them in `workers`
partitions of consecutive ids; each partition's iterator loads the bundle once
(`ChunkScorer.from_bundle`) and scores its Arrow batches through the same recommend path as the
local engine; the executors write the rows as Parquet part files in the output folder (`batch`
describes the folder contract and the checksum).

The bundle folder is read by the executors themselves, and they write the parts: on a cluster both
paths must be on a filesystem every executor mounts at the same path (they are passed as file://
URIs), and every executor needs Shopformer installed. Needs the `spark` extra and Java 17+.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from shopformer.errors import ConfigError
from shopformer.scale.batch import ChunkScorer, ScoreOptions, distributed_job, parts_summary
from shopformer.scale.spark_session import require_spark, spark_session

__all__ = ["score_users_spark"]

_SPARK_SCHEMA = "user_id string, item_id string, score float, rank int"
_ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


@dataclass(frozen=True)
class _PartitionScorer:
    """The `mapInArrow` function: loads the bundle at the first batch of a partition, then scores each batch."""

    bundle: str
    options: ScoreOptions

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = None
        for batch in batches:
            scorer = scorer or ChunkScorer.from_bundle(self.bundle, self.options)
            for table in scorer.tables(batch.column("user_id").to_pylist()):
                yield from table.to_batches()


def _users_frame(spark, ids: list[str], partitions: int):
    # An Arrow table becomes one partition per Arrow batch: batches of ceil(users / partitions) ids give
    # `partitions` partitions of consecutive users without a shuffle. The setting is read only here,
    # so it is put back at once and the scoring batches keep the session's own size.
    previous = spark.conf.get(_ARROW_BATCH)
    spark.conf.set(_ARROW_BATCH, str(-(-len(ids) // partitions)))
    try:
        return spark.createDataFrame(pa.table({"user_id": pa.array(ids, pa.string())}))
    finally:
        spark.conf.set(_ARROW_BATCH, previous)


def score_users_spark(bundle: str | Path, out: str | Path, users: Sequence[str] | None = None, *,
                      options: ScoreOptions | None = None, workers: int | None = None,
                      master: str | None = None) -> dict[str, Any]:
    """Writes the top-k of each of `users` (default: every user the bundle knows) as Parquet part files
    in the folder `out`, in `workers` partitions (default: the session's parallelism), each scored on
    `options.threads` torch threads (default 1); returns the counts, the times (`startup_seconds`:
    starting Spark; `seconds`: scoring, writing and the checksum pass), rows per second and the checksum."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    options = options or ScoreOptions(threads=1)
    require_spark()  # a missing PySpark or Java is said before the bundle is read or the output folder made
    bundle, ids, out = distributed_job(bundle, out, users)
    started = time.perf_counter()
    with spark_session(master, workers, app_name="shopformer-score") as spark:
        partitions, ready = workers or spark.sparkContext.defaultParallelism, time.perf_counter()
        with warnings.catch_warnings():
            # PySpark warns about pandas 3 whenever an Arrow path starts, though this one uses no pandas.
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
            scored = _users_frame(spark, ids, partitions).mapInArrow(_PartitionScorer(bundle, options), _SPARK_SCHEMA)
            scored.write.mode("overwrite").parquet(out.as_uri())
        return parts_summary("spark", out, len(ids), options, ready, workers=partitions,
                             startup_seconds=round(ready - started, 3))
