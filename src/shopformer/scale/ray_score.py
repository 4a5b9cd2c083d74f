"""Batch scoring on Ray: Ray Data streams the user ids through a pool of scoring actors.

The driver checks the bundle, lists the users and splits them into blocks of `chunk` ids; each actor
loads the bundle once (`ChunkScorer.from_bundle`) and scores every block it is handed through the
same recommend path as the local engine; light write tasks stream the rows to Parquet part files in
the output folder as the blocks come out (`batch` describes the folder contract and the checksum).

Without an address Ray starts in this process on `workers` CPUs and stops at the end; with one
(`ray://head:10001`, `auto`) the job runs on that cluster, and the bundle and the output folder must
then be on a filesystem every node mounts at the same path. A Ray already started in this process
is used as it is. Needs the `ray` extra.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from shopformer.errors import ConfigError
from shopformer.runtime import physical_cores
from shopformer.scale.batch import SCHEMA, ChunkScorer, ScoreOptions, distributed_job, parts_summary

__all__ = ["INSTALL_HINT", "local_ray", "score_users_ray"]

INSTALL_HINT = "pip install 'shopformer[ray]'"
# Scoring keeps only a few blocks of rows in flight: a capped object store keeps a local Ray light on a shared machine.
_LOCAL_OBJECT_STORE_BYTES = 2**30


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the part of the extra batch scoring runs on)
    except ImportError:
        raise ConfigError(f"the ray engine needs Ray Data: {INSTALL_HINT}") from None
    return ray


@contextmanager
def local_ray(address: str | None = None, workers: int | None = None) -> Iterator[None]:
    """Ray connected inside the block: to `address`, else a local Ray on `workers` CPUs (default: the
    physical cores), shut down afterwards. A Ray already started in this process is left as it is."""
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    if address is not None:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers or physical_cores(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=_LOCAL_OBJECT_STORE_BYTES, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


class _ActorScorer:
    """A Ray Data callable class: one loaded bundle per actor, one Arrow batch of user ids per call."""

    def __init__(self, bundle: str, options: ScoreOptions) -> None:
        self.scorer = ChunkScorer.from_bundle(bundle, options)

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = list(self.scorer.tables(batch.column("user_id").to_pylist()))
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def _scoring_actors(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def score_users_ray(bundle: str | Path, out: str | Path, users: Sequence[str] | None = None, *,
                    options: ScoreOptions | None = None, workers: int | None = None,
                    address: str | None = None) -> dict[str, Any]:
    """Writes the top-k of each of `users` (default: every user the bundle knows) as Parquet part files
    in the folder `out`, on `workers` scoring actors (default: one per CPU of the cluster), each on
    `options.threads` torch threads (default 1); returns the counts, the times (`startup_seconds`:
    starting Ray; `seconds`: scoring, writing and the checksum pass), rows per second and the checksum."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    options = options or ScoreOptions(threads=1)
    _ray()  # a missing Ray is said before the bundle is read or the output folder made
    bundle, ids, out = distributed_job(bundle, out, users)
    started = time.perf_counter()
    with local_ray(address, workers):
        ray = _ray()
        actors, ready = workers or _scoring_actors(ray), time.perf_counter()
        user_ids = pa.table({"user_id": pa.array(ids, pa.string())})
        blocks = [user_ids.slice(start, options.chunk) for start in range(0, len(ids), options.chunk)]
        scored = ray.data.from_arrow(blocks).map_batches(
            _ActorScorer, fn_constructor_kwargs={"bundle": bundle, "options": options}, batch_size=options.chunk,
            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
        with _quiet_progress(ray):
            # The actors hold a CPU each for the whole run: write tasks that asked for one too would wait
            # for the end and the rows would pile up in the object store. Writing is light: it asks for none.
            scored.write_parquet(str(out), ray_remote_args={"num_cpus": 0})
        return parts_summary("ray", out, len(ids), options, ready, workers=actors, startup_seconds=round(ready - started, 3))


@contextmanager
def _quiet_progress(ray) -> Iterator[None]:
    # Ray Data's own progress bars would interleave with the caller's console output.
    context = ray.data.DataContext.get_current()
    previous, context.enable_progress_bars = context.enable_progress_bars, False
    try:
        yield
    finally:
        context.enable_progress_bars = previous
