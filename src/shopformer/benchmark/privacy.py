"""Privacy benchmark: what user-level DP costs in accuracy and time, and what it buys against a
membership-inference attack, on the standard leave-one-out split.

* DP table: the same model trained without DP and with DP-SGD at each epsilon; test HR@10 / NDCG@10
  (all items, and the user's history removed), seconds per epoch, the epsilon actually spent.
* Membership inference: users split at random into members (trained on) and non-members (never
  seen); a model per setting is trained on the members only; the loss-threshold attack's AUC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Dataset
from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate import evaluate_next_item, leave_one_out_targets
from shopformer.evaluate.membership import loss_threshold_attack, user_losses
from shopformer.models.transformer import BehaviourTransformer
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info, versions
from shopformer.train.config import PRIVATE_DEFAULTS

__all__ = ["DP_OVERRIDES", "model_scorer", "protocol_prepared", "run_dp_table", "run_epoch_timing", "run_membership_attack",
           "split_metrics"]

logger = logging.getLogger(__name__)

#: What private runs override in the shared train settings: the budget in minutes would cut their
#: planned steps short; the rest comes from `train.config.PRIVATE_DEFAULTS`.
DP_OVERRIDES: dict[str, Any] = {"max_minutes": None}

PROTOCOL = {
    "split": "leave-one-out: last event = test target, second-to-last = validation target, rest = training",
    "ranking": "full: every item is a candidate; pessimistic ties",
    "dp": "user-level DP-SGD (Poisson-sampled users, one window each, per-user clipping, Gaussian noise, RDP accountant),"
          " delta = 1 / users; private runs keep their last epoch (no selection on validation)",
    "non_dp": "early stopping on validation NDCG@10; 'model only' leaves out the count priors, which private runs cannot have",
    "membership": "users split 50/50 at random; members' training events are trained on; attack = loss threshold on each"
                  " user's mean next-item loss over their last 10 training events",
}


def protocol_prepared(dataset: Dataset) -> PreparedDataset:
    """The dataset as the published protocol uses it: no de-duplication, no k-core filtering."""
    return prepare(dataset, PrepareConfig(dedupe_consecutive=False, min_user_events=1, min_item_events=1))


def split_metrics(scorer: Callable, prepared: PreparedDataset, split: str = "test") -> dict[str, float]:
    """HR@10 / NDCG@10 on `split`, with all items as candidates and with the history removed."""
    histories, targets = leave_one_out_targets(prepared.arrays(), split)
    n_items = prepared.item_encoder.n_codes
    out = {}
    for suffix, filter_seen in (("", False), ("_seen_filtered", True)):
        scores = evaluate_next_item(scorer, histories, targets, n_items, filter_seen=filter_seen, ks=(10,), coverage=False)
        out |= {f"hr@10{suffix}": round(scores["hr@10"], 5), f"ndcg@10{suffix}": round(scores["ndcg@10"], 5)}
    return out


def model_scorer(model: BehaviourTransformer, allowed: torch.Tensor | None = None):
    """Full-catalog scores after each history from the model alone; items outside `allowed` never rank."""
    def score(histories: SequenceArrays) -> torch.Tensor:
        scores = model.score_histories(histories)
        if allowed is not None:
            scores[:, ~allowed] = -torch.inf
        return scores
    model.eval()
    return score


def _fit(prepared: PreparedDataset, model: dict, train: dict, epsilon: float | None, dp: dict) -> Shopformer:
    # A private run keeps the train settings but the normal run's epochs and rate: its own defaults apply.
    shared = {k: v for k, v in train.items() if k not in PRIVATE_DEFAULTS} if epsilon is not None else train
    settings = shared | (dp | {"dp_epsilon": epsilon} if epsilon is not None else {})
    return Shopformer(model=model, train=settings).fit(prepared, exclude_last=1)


def _run_row(estimator: Shopformer, prepared: PreparedDataset, epsilon: float | None, seconds: float) -> dict[str, Any]:
    history = estimator.training_summary["history"]
    row: dict[str, Any] = {"epsilon": epsilon, "train_seconds": round(seconds, 1), "epochs": len(history),
                           "seconds_per_epoch": round(float(np.median([m["seconds"] for m in history])), 2),
                           "test": split_metrics(estimator.score_items, prepared)}
    if epsilon is None:
        row["test_model_only"] = split_metrics(model_scorer(estimator.transformer), prepared)
    else:
        row["privacy"] = estimator.training_summary["privacy"]
    return row


def run_dp_table(dataset: Dataset, *, epsilons: Sequence[float] = (8.0, 3.0, 1.0), model: dict | None = None,
                 train: dict | None = None, dp: dict | None = None, on_row: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Non-DP, then DP at each epsilon, on the leave-one-out split of `dataset`."""
    prepared = protocol_prepared(dataset)
    model, train, dp = model or {}, train or {}, DP_OVERRIDES | (dp or {})
    rows = []
    for epsilon in (None, *epsilons):
        started = time.perf_counter()
        estimator = _fit(prepared, model, train, epsilon, dp)
        rows.append(_run_row(estimator, prepared, epsilon, time.perf_counter() - started))
        if on_row is not None:
            on_row(rows[-1])
    reference = rows[0]
    for row in rows[1:]:
        row["ndcg@10_share_of_non_dp"] = round(row["test"]["ndcg@10_seen_filtered"] / reference["test"]["ndcg@10_seen_filtered"], 3)
        row["epoch_time_ratio"] = round(row["seconds_per_epoch"] / reference["seconds_per_epoch"], 2)
    return _document(dataset, prepared, {"dp_table": rows, "dp_settings": dp})


def run_membership_attack(dataset: Dataset, *, epsilons: Sequence[float | None] = (None, 3.0), model: dict | None = None,
                          train: dict | None = None, dp: dict | None = None, seed: int = 0,
                          on_row: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Trains on a random half of the users; attack AUC of telling them from the other half."""
    prepared = protocol_prepared(dataset)
    model, train, dp = model or {}, train or {}, DP_OVERRIDES | (dp or {})
    rows = np.random.default_rng(seed).permutation(len(prepared.sequences.users))
    members, others = prepared.for_users(rows[: len(rows) // 2]), prepared.for_users(rows[len(rows) // 2:])
    results = []
    for epsilon in epsilons:
        estimator = _fit(members, model, train, epsilon, dp)
        history = estimator.model_config.max_len
        member_losses = user_losses(estimator.score_items, members.arrays().drop_last(2), history=history)
        other_losses = user_losses(estimator.score_items, others.arrays().drop_last(2), history=history)
        row = {"epsilon": epsilon, "attack": loss_threshold_attack(member_losses, other_losses),
               "members_test": split_metrics(estimator.score_items, members),
               "mean_loss": {"members": round(float(np.nanmean(member_losses)), 4),
                             "non_members": round(float(np.nanmean(other_losses)), 4)}}
        results.append(row)
        if on_row is not None:
            on_row(row)
    return _document(dataset, prepared, {"membership": results, "dp_settings": dp})


def run_epoch_timing(dataset: Dataset, *, epochs: int = 2, epsilon: float = 3.0, model: dict | None = None,
                     train: dict | None = None) -> dict[str, Any]:
    """Seconds per training epoch (validation excluded) without and with DP, one after the other in
    this process, so both see the same machine; the ratio is what DP costs in time."""
    prepared = protocol_prepared(dataset)
    model, train = model or {}, (train or {}) | {"epochs": epochs, "max_minutes": None}
    seconds = {}
    for label, extra in (("non_dp", {}), ("dp", {"dp_epsilon": epsilon})):
        estimator = Shopformer(model=model, train=train | extra).fit(prepared, exclude_last=1)
        seconds[label] = [m["seconds"] for m in estimator.training_summary["history"]]
    medians = {label: float(np.median(values)) for label, values in seconds.items()}
    body = {"epoch_seconds": seconds, "median_epoch_seconds": medians, "dp_epsilon": epsilon,
            "ratio": round(medians["dp"] / medians["non_dp"], 2)}
    return _document(dataset, prepared, {"timing": body})


def _document(dataset: Dataset, prepared: PreparedDataset, body: dict) -> dict[str, Any]:
    info = {"name": dataset.name, "users": len(prepared.sequences), "items": len(prepared.item_encoder.classes),
            "events": prepared.sequences.n_events}
    return {"dataset": info, "protocol": PROTOCOL, "machine": machine_info(), "versions": versions(), **body}
