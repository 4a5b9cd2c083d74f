"""The model bundle: one folder holding a fitted `Shopformer`'s state, without pickle.

    bundle.json             header, versions, model and train configs, vocabularies, training summary
    weights.safetensors     the Transformer's learned tensors
    item_features.npz/json  the item table (ids, attributes, price buckets, text embeddings)
    users.json              the user-id encoder
    transitions/            the count prior's tables (JSON + npz; neighbours/ inside) and, in bundle.json, their weights
    histories.npz           each user's most recent events and the item popularity fallback

The bundle knows nothing of the estimator: `Shopformer.to_state()` gives an `EstimatorState`, which
`write_bundle` writes; `read_bundle` gives it back for `Shopformer.from_state`. Loading never runs
code from the folder: JSON, safetensors and `np.load(allow_pickle=False)` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file

from shopformer._version import __version__
from shopformer.artifacts import header, read_header
from shopformer.data.erasure import without_user_id
from shopformer.data.prepare import LabelEncoder
from shopformer.data.pseudonym import Pseudonymiser
from shopformer.data.sequences import SequenceArrays
from shopformer.features.items import ItemFeatures
from shopformer.models.prior import TransitionPrior

__all__ = ["EstimatorState", "forget_in_bundle", "read_bundle", "rekey_bundle", "write_bundle"]

_KIND, _VERSION = "bundle", 1
_HISTORY_ARRAYS = ("offsets", "items", "event_types", "timestamps")


@dataclass
class EstimatorState:
    """Everything a fitted `Shopformer` is. `meta` is JSON: configs (`model`, `train`, `text_model`),
    `event_vocabulary`, `default_event_type`, `time_resolution`, the prior's weights and the training
    summary (`history`, `best_epoch`, `train_seconds`)."""

    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    item_features: ItemFeatures
    user_encoder: LabelEncoder
    prior: TransitionPrior
    histories: SequenceArrays
    popularity: np.ndarray


def write_bundle(state: EstimatorState, directory: str | Path) -> Path:
    """Writes `state` into the bundle folder `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in state.weights.items()}, directory / "weights.safetensors")
    state.item_features.save(directory)
    state.user_encoder.save(directory / "users.json")
    state.prior.save(directory / "transitions")
    histories = {name: getattr(state.histories, name) for name in _HISTORY_ARRAYS}
    arrays = {name: array for name, array in histories.items() if array is not None}
    np.savez(directory / "histories.npz", popularity=state.popularity, **arrays)
    meta = header(_KIND, _VERSION, shopformer_version=__version__, torch_version=torch.__version__,
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  n_items=state.item_features.n_items, **state.meta,
                  transition_weight=state.prior.weight, neighbour_weight=state.prior.neighbour_weight)
    (directory / "bundle.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return directory


def read_bundle(directory: str | Path) -> EstimatorState:
    """The state saved in the bundle folder `directory`; a folder that is not one is a `DataError`."""
    directory = Path(directory)
    meta = read_header(directory / "bundle.json", _KIND, _VERSION, what="Shopformer bundle")
    with np.load(directory / "histories.npz", allow_pickle=False) as arrays:
        stored = {name: arrays[name] for name in arrays.files}
    prior = TransitionPrior.load(directory / "transitions", meta["transition_weight"], meta.get("neighbour_weight", 0.0))
    return EstimatorState(
        meta=meta,
        weights=load_file(directory / "weights.safetensors"),
        item_features=ItemFeatures.load(directory),
        user_encoder=LabelEncoder.load(directory / "users.json"),
        prior=prior,
        histories=SequenceArrays(*(stored.get(name) for name in _HISTORY_ARRAYS)),
        popularity=stored["popularity"],
    )


def rekey_bundle(directory: str | Path, pseudonymiser: Pseudonymiser) -> list[str]:
    """Re-keys the user ids of a bundle made under the chain before `pseudonymiser`'s last key: the user
    encoder (order kept, so every history row stays with its user) and the task models' log. Returns
    the bundle's previous user ids, which the event store's forgotten list is re-keyed with."""
    directory = Path(directory)
    read_header(directory / "bundle.json", _KIND, _VERSION, what="Shopformer bundle")
    encoder = LabelEncoder.load(directory / "users.json")
    previous = encoder.classes.to_list()
    LabelEncoder.from_classes([pseudonymiser.rekey(u) for u in previous]).save(directory / "users.json")  # placeholders stay
    task_log = directory / "tasks" / "events.parquet"
    if task_log.is_file():
        pseudonymiser.frame(pl.read_parquet(task_log), mapping=pseudonymiser.rekey).write_parquet(task_log)
    return previous


def forget_in_bundle(directory: str | Path, user_id: str) -> dict[str, int]:
    """Removes a user from a bundle: their stored history and their rows of the task models' log. The
    encoder entry becomes a placeholder, so every other user keeps their code. Returns what went."""
    directory = Path(directory)
    read_header(directory / "bundle.json", _KIND, _VERSION, what="Shopformer bundle")
    encoder, code = without_user_id(LabelEncoder.load(directory / "users.json"), user_id)
    erased = {"bundle history events": 0, "bundle task-log events": 0}
    if code is not None:
        encoder.save(directory / "users.json")
        with np.load(directory / "histories.npz", allow_pickle=False) as arrays:
            stored = {name: arrays[name] for name in arrays.files}
        histories = SequenceArrays(*(stored.get(name) for name in _HISTORY_ARRAYS))
        lengths = histories.lengths.copy()
        erased["bundle history events"], lengths[code] = int(lengths[code]), 0
        emptied = histories.windows(histories.offsets[:-1], lengths)
        kept = {name: getattr(emptied, name) for name in _HISTORY_ARRAYS if getattr(emptied, name) is not None}
        np.savez(directory / "histories.npz", popularity=stored["popularity"], **kept)
    task_log = directory / "tasks" / "events.parquet"
    if task_log.is_file():
        log = pl.read_parquet(task_log)
        kept_log = log.filter(pl.col("user_id") != user_id)
        erased["bundle task-log events"] = log.height - kept_log.height
        kept_log.write_parquet(task_log)
    return erased
