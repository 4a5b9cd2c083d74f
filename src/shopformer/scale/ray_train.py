"""Ray Train as a launcher of the training loop (`shopformer train ... --launcher ray --workers 2`).

`TorchTrainer` starts `workers` processes on a Ray cluster and sets up their torch process group;
each runs `Shopformer.fit`, whose loop then trains data-parallel exactly as under torchrun
(`shopformer.train.distributed`: its share of every global batch, gradients all-reduced, rank 0
validates). The caller prepares the data once and it reaches the workers through Ray's object
store; rank 0 saves the bundle and its per-epoch metrics as the run's checkpoint, which is copied
to `out`.

Without an address Ray starts in this process on `workers` CPUs and stops at the end (`local_ray`);
with one (`auto`, `ray://head:10001`) the run goes to that cluster, where every node needs
Shopformer installed and `storage` must be a folder or URI all nodes reach (NFS, S3...). Needs the
`ray` extra.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from shopformer.data.prepared import PreparedDataset
from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer
from shopformer.scale.ray_score import INSTALL_HINT, local_ray
from shopformer.train.distributed import process_ranks

__all__ = ["fit_with_ray"]


def _ray_train():
    try:
        import ray
        import ray.train
        import ray.train.torch
    except ImportError:
        raise ConfigError(f"the ray launcher needs Ray Train: {INSTALL_HINT}") from None
    return ray, ray.train, ray.train.torch


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: fits on the shared prepared data; rank 0 reports the bundle."""
    ray, train, _ = _ray_train()
    prepared = ray.get(config["data"])
    estimator = Shopformer(model=config["model"], train=config["train"])
    main = process_ranks().is_main
    with tempfile.TemporaryDirectory() as folder:
        estimator.fit(prepared, metrics_path=Path(folder) / "metrics.jsonl" if main else None)
        outcome = {"best_epoch": estimator.training_summary["best_epoch"]}
        if main:
            estimator.save(folder)
            train.report(outcome, checkpoint=train.Checkpoint.from_directory(folder))
        else:
            train.report(outcome)  # every worker reports: Ray waits for all of them


def fit_with_ray(prepared: PreparedDataset, out: str | Path, *, model: dict | None = None, train: dict | None = None,
                 workers: int = 2, address: str | None = None, storage: str | None = None) -> Shopformer:
    """Trains `Shopformer(model=model, train=train)` on `prepared` with `workers` Ray Train workers,
    writes the bundle (and `metrics.jsonl`) to `out` and returns it loaded from there.

    `storage`: where Ray keeps the run's checkpoint (default: a temporary folder, removed afterwards).
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    estimator = Shopformer(model=model, train=train)  # a bad config fails here, before Ray starts
    if workers > 1 and estimator.train_config.dp_epsilon is not None:
        raise ConfigError("differentially private training runs in one process: use --workers 1 or no --launcher ray")
    ray, ray_train, ray_torch = _ray_train()
    out = Path(out)
    if storage is not None and "://" not in storage:
        storage = str(Path(storage).resolve())  # Ray takes absolute local paths only
    with local_ray(address, workers), tempfile.TemporaryDirectory() as scratch:
        scratch = str(Path(scratch).resolve())
        trainer = ray_torch.TorchTrainer(
            _train_worker,
            train_loop_config={"data": ray.put(prepared), "model": model or {}, "train": train or {}},
            scaling_config=ray_train.ScalingConfig(num_workers=workers, use_gpu=False),
            run_config=ray_train.RunConfig(name=f"shopformer-train-{uuid.uuid4().hex[:8]}",
                                           storage_path=storage or scratch),
        )
        result = trainer.fit()
        out.mkdir(parents=True, exist_ok=True)
        with result.checkpoint.as_directory() as folder:
            shutil.copytree(folder, out, dirs_exist_ok=True)
    return Shopformer.load(out)
