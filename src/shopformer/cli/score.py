"""`shopformer score`: the top-k items of every user (or of a list of users), written to Parquet."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from shopformer.cli.common import console, reports_errors
from shopformer.errors import ConfigError

SCORE_EXAMPLES = """[bold]Examples[/]\n
  shopformer score --bundle shopformer-output/quickstart/bundle --users all --out recs.parquet\n
  shopformer score --bundle bundle/ --users users.txt -k 20 --out recs.parquet --json score.json   (one id per line)\n
  shopformer score --bundle bundle/ --engine ray --workers 4 --out recs.parquet   (local Ray; a folder of part files)\n
  shopformer score --bundle /shared/bundle --engine ray --ray-address ray://head:10001 --out /shared/recs.parquet\n
  shopformer score --bundle bundle/ --engine spark --workers 4 --out recs.parquet   (local Spark, local[4])\n
  shopformer score --bundle /shared/bundle --engine spark --spark-master spark://head:7077 --out /shared/recs.parquet\n
The local engine writes one Parquet file; ray and spark write a folder of part files at --out, and on a
cluster the bundle and --out must be on a filesystem every worker mounts at the same path. The checksum
is the same for the same recommendations whichever engine wrote them.
"""


class Engine(str, Enum):
    """Where the users are scored."""

    local = "local"
    ray = "ray"
    spark = "spark"


def _read_users(users: str) -> list[str] | None:
    if users == "all":
        return None
    path = Path(users)
    if not path.is_file():
        raise ConfigError(f"--users {users}: give `all` or a file of user ids, one per line (no such file)")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise ConfigError(f"--users {users}: the file has no user ids")
    return ids


def _check_engine_options(engine: Engine, workers: int | None, ray_address: str | None, spark_master: str | None) -> None:
    if workers is not None and engine is Engine.local:
        raise ConfigError("--workers applies to --engine ray or spark (the local engine scores in this process)")
    if ray_address is not None and engine is not Engine.ray:
        raise ConfigError("--ray-address applies to --engine ray only")
    if spark_master is not None and engine is not Engine.spark:
        raise ConfigError("--spark-master applies to --engine spark only")


def _score_locally(bundle: Path, out: Path, ids: list[str] | None, k: int, filter_seen: bool, chunk: int,
                   threads: int | None) -> dict[str, Any]:
    from shopformer.predict.estimator import Shopformer
    from shopformer.scale.batch import score_users

    model = Shopformer.load(bundle)
    if threads is not None:
        model.train_config.num_threads = threads
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress("users", *columns, console=console, transient=True) as progress:
        task = progress.add_task("users", total=None)
        return score_users(model, out, ids, k=k, filter_seen=filter_seen, chunk=chunk,
                           progress=lambda done, total: progress.update(task, completed=done, total=total))


def _score_distributed(engine: Engine, bundle: Path, out: Path, ids: list[str] | None, options, workers: int | None,
                       address: str | None) -> dict[str, Any]:
    from shopformer.scale.ray_score import score_users_ray
    from shopformer.scale.spark_score import score_users_spark

    with console.status(f"scoring on {engine.value}…"):
        if engine is Engine.ray:
            return score_users_ray(bundle, out, ids, options=options, workers=workers, address=address)
        return score_users_spark(bundle, out, ids, options=options, workers=workers, master=address)


OutOpt = Annotated[Path, typer.Option("--out", help="Parquet file (local) or folder of part files (ray, spark).")]
EngineOpt = Annotated[Engine, typer.Option("--engine", help="local (this process), ray (Ray Data actors) or spark (mapInArrow).")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", min=1, help="Ray actors / Spark partitions (default: one per core).")]
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", min=1, help="Torch threads per scorer (default: the bundle's for local, 1 for ray/spark).")
]

SparkMasterOpt = Annotated[Optional[str], typer.Option("--spark-master", help="Spark master URL (default: local mode on --workers cores).")]


@reports_errors
def score(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train`.")],
    out: OutOpt,
    users: Annotated[str, typer.Option("--users", help="`all` (every user the bundle knows) or a file of ids.")] = "all",
    k: Annotated[int, typer.Option("-k", min=1, help="Items per user.")] = 10,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="Allow items already in the history.")] = False,
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="Users scored per call (bounds memory).")] = 4096,
    engine: EngineOpt = Engine.local,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster to join (default: a local Ray).")] = None,
    spark_master: SparkMasterOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Where to write the counts, rows/s and checksum.")] = None,
) -> None:
    """Batch scoring: recommendations (user_id, item_id, score, rank) for many users at once, streamed to
    Parquet with a checksum, in this process or on Ray or Spark."""
    from shopformer.scale.batch import ScoreOptions

    if out.suffix != ".parquet":
        raise ConfigError(f"--out {out}: batch scores are written as Parquet (a .parquet file or folder)")
    _check_engine_options(engine, workers, ray_address, spark_master)
    ids = _read_users(users)
    if engine is Engine.local:
        summary = _score_locally(bundle, out, ids, k, not keep_seen, chunk, threads)
    else:
        options = ScoreOptions(k=k, filter_seen=not keep_seen, chunk=chunk, threads=threads or 1)
        summary = _score_distributed(engine, bundle, out, ids, options, workers, ray_address or spark_master)
    console.print(f"{summary['rows']:,} recommendations for {summary['users']:,} users in {summary['seconds']:.1f} s "
                  f"({summary['rows_per_s']:,.0f} rows/s, {engine.value}) -> {out}\nchecksum {summary['checksum']}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
