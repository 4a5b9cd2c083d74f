"""Batch scoring: the top-k items of many users, written to Parquet chunk by chunk.

Users are scored in id order, `chunk` at a time, through `Shopformer.recommend` (the same
top-k-with-filters path as the service), and each chunk's rows are appended to one Parquet file, so
memory stays bounded by a chunk whatever the number of users. The checksum hashes every
(user_id, rank, item_id) line in user and rank order, leaving scores out (their last bits differ
between machines and thread counts); it is computed chunk by chunk as the rows are written, and
`recommendations_checksum` gives the same for any table of recommendations.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer

__all__ = ["COLUMNS", "recommendations_checksum", "score_users"]

COLUMNS = ("user_id", "item_id", "score", "rank")


def _lines(frame: pl.DataFrame) -> bytes:
    ordered = frame.select("user_id", "rank", "item_id").sort("user_id", "rank")
    if ordered.is_empty():
        return b""
    line = pl.concat_str([pl.col("user_id"), pl.col("rank").cast(pl.String), pl.col("item_id").fill_null("")], separator="\x1f")
    return (ordered.select(line).to_series().str.join("\n").item() + "\n").encode()


def recommendations_checksum(frame: pl.DataFrame) -> str:
    """sha256 of the rows' (user_id, rank, item_id) lines, sorted by user and rank."""
    return hashlib.sha256(_lines(frame)).hexdigest()


def score_users(model: Shopformer, out: str | Path, users: Sequence[str] | None = None, *, k: int = 10,
                filter_seen: bool = True, chunk: int = 4096,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Writes the top `k` of each of `users` (default: every user the model knows; duplicates once) to
    the Parquet file `out`; returns the counts, the time, rows per second and the checksum of the rows."""
    users = sorted(set(model.known_users() if users is None else [str(u) for u in users]))
    if not users:
        raise ConfigError("no users to score")
    if chunk < 1:
        raise ConfigError(f"chunk must be at least 1, got {chunk}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started, rows, writer, digest = time.perf_counter(), 0, None, hashlib.sha256()
    try:
        for start in range(0, len(users), chunk):
            table = model.recommend(users=users[start:start + chunk], k=k, filter_seen=filter_seen).select(COLUMNS)
            arrow = table.to_arrow()
            writer = writer or pq.ParquetWriter(out, arrow.schema)
            writer.write_table(arrow)
            digest.update(_lines(table))  # chunks are in user order: the running hash is the whole table's
            rows += table.height
            if progress is not None:
                progress(min(start + chunk, len(users)), len(users))
    finally:
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - started
    return {"users": len(users), "rows": rows, "k": k, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / max(seconds, 1e-9), 1), "out": str(out), "checksum": digest.hexdigest()}
