"""The next-item benchmark: Shopformer and the baselines on one leave-one-out split, in one run.

Protocol (what published full-ranking numbers use): per user the last event is the test target and
the second-to-last the validation target; every model trains on the rest. Each target is ranked
against all items, ties counted against it. Metrics are reported twice: with every item a
candidate (`metrics`) and with the user's history items removed (`metrics_seen_filtered`, the
choice of the S3-Rec/BSARec evaluation code). Only validation is used to pick epochs.

The JSON written by `shopformer benchmark next-item` is the dict returned here:
`{"dataset", "protocol", "machine", "versions", "results": [{"model", "split", "metrics",
"metrics_seen_filtered", "train_seconds", "epochs", ...}]}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Dataset
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.evaluate import evaluate_next_item, leave_one_out_targets
from shopformer.models.baselines import ItemKNN, MarkovChain, MostPopular, NextItemModel
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, matmul_gflops, versions

__all__ = ["BASELINES", "MODELS", "run_next_item_benchmark", "training_summary"]

logger = logging.getLogger(__name__)

BASELINES: dict[str, Callable[[], NextItemModel]] = {"popular": MostPopular, "item-knn": ItemKNN, "markov": MarkovChain}
MODELS = ("shopformer", "shopformer-ids-only", *BASELINES)
_IDS_ONLY = {"use_text": False, "use_attributes": False, "use_price": False}
PROTOCOL = {
    "split": "leave-one-out: last event = test target, second-to-last = validation target, rest = training",
    "ranking": "full: every item is a candidate (no sampled negatives)",
    "ties": "pessimistic (counted against the target)",
    "metrics": "all items are candidates",
    "metrics_seen_filtered": "items of the user's history are removed from the candidates (the target stays)",
    "selection": "early stopping and epoch choice on validation NDCG@10 only",
}


def training_gflop_per_epoch(model: Shopformer, n_targets: int) -> float:
    """Approximate floating-point work of one epoch: 3x the forward pass (forward + backward).

    Per predicted position: the blocks' projections (attention 4·d², feed-forward 2·f·d², twice for
    multiply-add) and attention scores over ~L/2 earlier positions, plus the full-catalog output layer.
    """
    config, n_items = model.config, model.item_features.n_items
    d, length = config.dim, config.max_len
    per_block = 2 * (4 * d * d + 2 * config.ffn_multiplier * d * d) + 2 * 2 * d * length / 2
    output = 2 * d * (n_items if config.loss == "full" else config.negatives)
    return 3 * n_targets * (config.layers * per_block + output) / 1e9


def run_next_item_benchmark(
    dataset: Dataset,
    *,
    models: Sequence[str] = MODELS,
    model_overrides: dict | None = None,
    train_overrides: dict | None = None,
    text_model: str | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Runs `models` on the leave-one-out split of `dataset` and returns the results document."""
    unknown = [name for name in models if name not in MODELS]
    if unknown:
        raise ConfigError(f"unknown benchmark model(s) {unknown}; choose from {list(MODELS)}")
    # The protocol's data is used as published: no de-duplication, no k-core filtering.
    prepared = prepare(dataset, PrepareConfig(dedupe_consecutive=False, min_user_events=1, min_item_events=1))
    arrays = prepared.arrays()
    n_items = prepared.item_encoder.n_codes
    cases = {split: leave_one_out_targets(arrays, split) for split in ("valid", "test")}
    train = arrays.drop_last(2)
    results = []
    for name in models:
        started = time.perf_counter()
        if name in BASELINES:
            scorer = BASELINES[name]().fit(train.offsets, train.items, n_items).score
            extra = {"train_seconds": round(time.perf_counter() - started, 1), "epochs": None}
        else:
            overrides = (model_overrides or {}) | (_IDS_ONLY if name == "shopformer-ids-only" else {})
            estimator = _fit_shopformer(prepared, overrides, train_overrides, text_model)
            scorer = estimator.score_items
            extra = training_summary(estimator, train, time.perf_counter() - started)
        for split, (histories, targets) in cases.items():
            result = {"model": name, "split": split, **_metrics(scorer, histories, targets, n_items), **extra}
            results.append(result)
            if on_result is not None:
                on_result(result)
    machine = machine_info() | {"matmul_gflops": round(matmul_gflops(), 1)}
    return {"dataset": _dataset_info(dataset, prepared), "protocol": PROTOCOL, "machine": machine,
            "versions": versions(), "results": results}


def _fit_shopformer(prepared: PreparedDataset, model_overrides: dict, train_overrides: dict | None, text_model: str | None) -> Shopformer:
    kwargs = {"text_model": text_model} if text_model else {}
    estimator = Shopformer(model=model_overrides, train=train_overrides or {}, **kwargs)
    return estimator.fit(prepared, exclude_last=1)


def _metrics(scorer, histories: SequenceArrays, targets: np.ndarray, n_items: int) -> dict[str, Any]:
    keep = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10", "coverage@10")
    out: dict[str, Any] = {}
    for key, filter_seen in (("metrics", False), ("metrics_seen_filtered", True)):
        scores = evaluate_next_item(scorer, histories, targets, n_items, filter_seen=filter_seen)
        out[key] = {name: round(scores[name], 5) for name in keep}
    out["n_users"] = int(len(targets))
    return out


def training_summary(estimator: Shopformer, train, seconds: float) -> dict[str, Any]:
    """Time, epochs, best epoch, per-epoch seconds and useful GFLOP/s of a fit on `train` (its arrays)."""
    summary = estimator.training_summary
    history = summary["history"]
    seconds_per_epoch = float(np.median([m["seconds"] for m in history]))
    # Targets per epoch: every training event after a user's first.
    n_targets = int(np.maximum(train.lengths - 1, 0).sum())
    work = training_gflop_per_epoch(estimator, n_targets)
    return {
        "train_seconds": round(seconds, 1), "epochs": len(history), "best_epoch": summary["best_epoch"],
        "seconds_per_epoch": round(seconds_per_epoch, 2), "gflop_per_epoch": round(work, 1),
        "achieved_gflops": round(work / seconds_per_epoch, 1), "config": estimator.config.model_dump(),
        "prior_weights": summary["prior_weights"],
    }


def _dataset_info(dataset: Dataset, prepared: PreparedDataset) -> dict[str, Any]:
    return {"name": dataset.name, "users": len(prepared.sequences), "items": len(prepared.item_encoder.classes),
            "events": prepared.sequences.n_events, "source": dataset.info.get("paths", {})}
