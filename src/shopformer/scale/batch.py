"""Batch scoring: the top-k items of many users, written to Parquet chunk by chunk.

Every engine runs the same core, `ChunkScorer`: users are scored `chunk` at a time through
`Shopformer.recommend` (the same top-k-with-filters path as the service), one Arrow table of
`SCHEMA` per chunk, so memory stays bounded by a chunk whatever the number of users.

Output contract: the local engine (`score_users`) writes one Parquet file, in user order; the
distributed engines (`scale.ray_score`, `scale.spark_score`) write a folder of Parquet part files
at the same path, each worker writing its own parts. `read_scores` and `scores_checksum` read
either form alike.

The checksum hashes every (user_id, rank, item_id) line in user and rank order, leaving scores out
(their last bits differ between machines and thread counts). The local engine computes it chunk by
chunk as it writes; for a folder of parts the rows are sorted first, so the same recommendations
give the same checksum whichever engine wrote them and in whatever order the parts arrived.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer

__all__ = ["COLUMNS", "SCHEMA", "ChunkScorer", "ScoreOptions", "distributed_job", "parts_summary", "read_scores",
           "recommendations_checksum", "score_users", "scores_checksum"]

COLUMNS = ("user_id", "item_id", "score", "rank")
SCHEMA = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("score", pa.float32()), ("rank", pa.int32())])
# What Spark and Hadoop leave beside the part files of a folder they wrote.
_MARKERS = ("_SUCCESS", "_committed_", "_started_")


@dataclass(frozen=True)
class ScoreOptions:
    """What every engine scores with: `k` items per user, seen items dropped unless `filter_seen` is
    off, `chunk` users per `recommend` call, `threads` torch threads per scorer (None: the bundle's)."""

    k: int = 10
    filter_seen: bool = True
    chunk: int = 4096
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("k", "chunk", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")


class ChunkScorer:
    """One loaded model turning user ids into recommendation rows, `options.chunk` users at a time."""

    def __init__(self, model: Shopformer, options: ScoreOptions) -> None:
        if options.threads is not None:
            model.train_config.num_threads = options.threads  # scoring runs on this many torch threads
        self.model, self.options = model, options

    @classmethod
    def from_bundle(cls, bundle: str | Path, options: ScoreOptions) -> ChunkScorer:
        """Loads the bundle folder once; what each Ray actor and each Spark partition does first."""
        return cls(Shopformer.load(bundle), options)

    def tables(self, users: Sequence[str]) -> Iterator[pa.Table]:
        """One `SCHEMA` table per chunk of `users`, in their order, each user's rows by rank."""
        k, filter_seen, chunk = self.options.k, self.options.filter_seen, self.options.chunk
        for start in range(0, len(users), chunk):
            table = self.model.recommend(users=list(users[start:start + chunk]), k=k, filter_seen=filter_seen)
            yield table.select(COLUMNS).to_arrow().cast(SCHEMA)


def _lines(frame: pl.DataFrame) -> bytes:
    ordered = frame.select("user_id", "rank", "item_id").sort("user_id", "rank")
    if ordered.is_empty():
        return b""
    line = pl.concat_str([pl.col("user_id"), pl.col("rank").cast(pl.String), pl.col("item_id").fill_null("")], separator="\x1f")
    return (ordered.select(line).to_series().str.join("\n").item() + "\n").encode()


def recommendations_checksum(frame: pl.DataFrame) -> str:
    """sha256 of the rows' (user_id, rank, item_id) lines, sorted by user and rank."""
    return hashlib.sha256(_lines(frame)).hexdigest()


def _part_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"{path}: no such Parquet file or folder of part files")
    return sorted(p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith(("_", ".")))


def read_scores(path: str | Path) -> pl.DataFrame:
    """The recommendations in a Parquet file or a folder of part files, as written (not sorted)."""
    files = _part_files(Path(path))
    if not files:
        return pl.from_arrow(SCHEMA.empty_table())
    return pl.read_parquet(files)


def scores_checksum(path: str | Path) -> tuple[int, str]:
    """Rows and checksum of a Parquet file or folder of parts; holds (user_id, rank, item_id) in memory."""
    files = _part_files(Path(path))
    if not files:
        return 0, recommendations_checksum(pl.from_arrow(SCHEMA.empty_table()))
    frame = pl.scan_parquet(files).select("user_id", "rank", "item_id").collect()
    return frame.height, recommendations_checksum(frame)


def _job_users(known: Callable[[], list[str]], users: Sequence[str] | None) -> list[str]:
    ids = sorted(set(known() if users is None else [str(u) for u in users]))
    if not ids:
        raise ConfigError("no users to score")
    return ids


def _summary(engine: str, n_users: int, rows: int, k: int, seconds: float, out: Path, checksum: str, **extra: Any) -> dict[str, Any]:
    return {"engine": engine, "users": n_users, "rows": rows, "k": k, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / max(seconds, 1e-9), 1), "out": str(out), "checksum": checksum, **extra}


def score_users(model: Shopformer, out: str | Path, users: Sequence[str] | None = None, *, k: int = 10,
                filter_seen: bool = True, chunk: int = 4096,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Writes the top `k` of each of `users` (default: every user the model knows; duplicates once) to
    the Parquet file `out`; returns the counts, the time, rows per second and the checksum of the rows."""
    scorer = ChunkScorer(model, ScoreOptions(k=k, filter_seen=filter_seen, chunk=chunk))
    users = _job_users(model.known_users, users)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started, rows, digest = time.perf_counter(), 0, hashlib.sha256()
    with pq.ParquetWriter(out, SCHEMA) as writer:
        for done, table in enumerate(scorer.tables(users), start=1):
            writer.write_table(table)
            digest.update(_lines(pl.from_arrow(table)))  # chunks are in user order: the running hash is the whole table's
            rows += table.num_rows
            if progress is not None:
                progress(min(done * chunk, len(users)), len(users))
    return _summary("local", len(users), rows, k, time.perf_counter() - started, out, digest.hexdigest())


def _clear_parts_folder(out: Path) -> None:
    """Empties a folder of part files left by an earlier run; refuses a file or a folder holding anything else."""
    if out.is_file():
        raise ConfigError(f"{out} is a file: the distributed engines write a folder of Parquet part files there")
    if not out.is_dir():
        out.mkdir(parents=True)
        return
    entries = list(out.iterdir())
    foreign = [p.name for p in entries if p.is_dir() or not (p.suffix in (".parquet", ".crc") or p.name.startswith(_MARKERS))]
    if foreign:
        raise ConfigError(f"{out} holds other files ({', '.join(sorted(foreign)[:3])}): choose an empty or new output folder")
    for entry in entries:
        entry.unlink()


def distributed_job(bundle: str | Path, out: str | Path, users: Sequence[str] | None) -> tuple[str, list[str], Path]:
    """What the driver of a distributed engine settles before any worker starts: the bundle's absolute
    path (checked by loading it once), the sorted users and an empty output folder for the parts."""
    bundle = Path(bundle).resolve()
    ids = _job_users(Shopformer.load(bundle).known_users, users)
    out = Path(out).resolve()
    _clear_parts_folder(out)
    return str(bundle), ids, out


def parts_summary(engine: str, out: Path, n_users: int, options: ScoreOptions, started: float, **extra: Any) -> dict[str, Any]:
    """The summary of a finished distributed run: rows and checksum over all the part files in `out`,
    timed from `started` (a `time.perf_counter()` reading) to the end of the checksum pass."""
    rows, checksum = scores_checksum(out)
    return _summary(engine, n_users, rows, options.k, time.perf_counter() - started, out, checksum, **extra)
