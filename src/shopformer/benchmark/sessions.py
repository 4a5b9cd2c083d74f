"""The session next-item benchmark: session lists with their shipped test cases (Diginetica, Tmall as
preprocessed by SR-GNN / GCE-GNN), scored as the session papers score them.

Protocol: every model trains on the training sessions only; the Transformer early-stops on each
training session's last click (its validation target). Each shipped test case (a prefix and its
next item) is ranked against all items, ties counted against the target, with no candidate removed:
a session may click an item again. P@20 is the share of cases whose target is in the top 20 (the
papers' "precision", equal to HR@20) and MRR@20 the mean reciprocal rank, 0 beyond 20; both are
reported in percent like the papers. Test sessions are never trained on.

The JSON written by `shopformer benchmark next-item --format sessions` is the dict returned here:
`{"dataset", "protocol", "machine", "versions", "results": [{"model", "split", "p@20", "mrr@20",
"metrics", "n_cases", "train_seconds", "epochs", ...}]}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shopformer.benchmark.next_item import BASELINES, training_summary
from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Dataset
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.evaluate import evaluate_next_item, leave_one_out_targets
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, matmul_gflops, versions

__all__ = ["SESSION_MODELS", "run_session_benchmark"]

SESSION_MODELS = ("shopformer", *BASELINES)
PROTOCOL = {
    "split": "the shipped split: train sessions to fit, the shipped test cases (prefix -> next item) to score",
    "validation": "the last click of every training session (early stopping and prior weights only)",
    "ranking": "full: every item is a candidate, none removed (sessions may click an item again)",
    "ties": "pessimistic (counted against the target)",
    "p@20": "percent of test cases whose target is in the top 20 (the session papers' P@20 = HR@20)",
    "mrr@20": "mean reciprocal rank of the target in percent, 0 beyond rank 20",
}
_KEEP = ("hr@10", "hr@20", "ndcg@10", "ndcg@20", "mrr@10", "mrr@20", "coverage@20")


def run_session_benchmark(
    dataset: Dataset,
    *,
    models: Sequence[str] = SESSION_MODELS,
    model_overrides: dict | None = None,
    train_overrides: dict | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Runs `models` on the shipped train/test split of a session-list `dataset` (format "sessions",
    read with its test cases) and returns the results document."""
    unknown = [name for name in models if name not in SESSION_MODELS]
    if unknown:
        raise ConfigError(f"unknown session benchmark model(s) {unknown}; choose from {list(SESSION_MODELS)}")
    prepared = prepare(dataset, PrepareConfig(dedupe_consecutive=False, min_user_events=1, min_item_events=1))
    train, test = _split(prepared)
    n_items = prepared.item_encoder.n_codes
    train_arrays = train.arrays()
    cases = {"valid": leave_one_out_targets(train_arrays, "test"), "test": leave_one_out_targets(test.arrays(), "test")}
    results = []
    for name in models:
        started = time.perf_counter()
        if name in BASELINES:
            # Valid targets are the sessions' last clicks: counted for test, kept out for valid.
            scorers = {split: BASELINES[name]().fit(fit_on.offsets, fit_on.items, n_items).score
                       for split, fit_on in (("valid", train_arrays.drop_last(1)), ("test", train_arrays))}
            extra = {"train_seconds": round(time.perf_counter() - started, 1), "epochs": None}
        else:
            # Validation ranks like the test: sessions click items again, so no candidate is removed.
            train_config = {"filter_seen": False} | (train_overrides or {})
            estimator = Shopformer(model=model_overrides or {}, train=train_config).fit(train)
            scorers = dict.fromkeys(cases, estimator.score_items)
            extra = training_summary(estimator, train_arrays.drop_last(1), time.perf_counter() - started)
        for split, (histories, targets) in cases.items():
            result = {"model": name, "split": split, **_session_metrics(scorers[split], histories, targets, n_items), **extra}
            results.append(result)
            if on_result is not None:
                on_result(result)
    machine = machine_info() | {"matmul_gflops": round(matmul_gflops(), 1)}
    info = {"name": dataset.name, "items": len(prepared.item_encoder.classes), "train_sessions": len(train.sequences),
            "test_cases": len(test.sequences), "source": dataset.info.get("paths", {})}
    return {"dataset": info, "protocol": PROTOCOL, "machine": machine, "versions": versions(), "results": results}


def _split(prepared: PreparedDataset) -> tuple[PreparedDataset, PreparedDataset]:
    """The training sessions and the test cases (by the reader's `train-`/`test-` session ids)."""
    ids = np.asarray(prepared.user_encoder.inverse_transform(prepared.sequences.users)).astype(str)
    is_test = np.char.startswith(ids, "test-")
    is_train = np.char.startswith(ids, "train-")
    if not is_test.any() or not is_train.any():
        raise ConfigError("the session benchmark needs training sessions and test cases: read the dataset with "
                          "format 'sessions' and its test file (--test-cases)")
    return prepared.for_users(np.flatnonzero(is_train)), prepared.for_users(np.flatnonzero(is_test))


def _session_metrics(scorer, histories: SequenceArrays, targets: np.ndarray, n_items: int) -> dict[str, Any]:
    scores = evaluate_next_item(scorer, histories, targets, n_items, filter_seen=False, ks=(10, 20))
    return {"p@20": round(100 * scores["hr@20"], 2), "mrr@20": round(100 * scores["mrr@20"], 2),
            "metrics": {name: round(scores[name], 5) for name in _KEEP}, "n_cases": int(len(targets))}
