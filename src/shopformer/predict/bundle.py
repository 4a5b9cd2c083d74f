"""The model bundle: one folder holding everything a fitted `Shopformer` needs, without pickle.

    bundle.json             format, versions, model and train configs, vocabularies, training summary
    weights.safetensors     the Transformer's learned tensors
    item_features.npz/json  the item table (ids, attributes, price buckets, text embeddings)
    users.json              the user-id encoder
    transitions/            the transition prior's tables (JSON + npz; neighbours/ inside) and, in bundle.json, their weights
    histories.npz           each user's most recent events and the item popularity fallback

Loading never runs code from the folder: JSON, safetensors and `np.load(allow_pickle=False)` only.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from shopformer import __version__
from shopformer.data.prepare import LabelEncoder
from shopformer.data.codes import FIRST_CODE
from shopformer.errors import DataError
from shopformer.features.items import ItemFeatures
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train import TrainConfig
from shopformer.models.config import ModelConfig
from shopformer.data.sequences import SequenceArrays
from shopformer.models.prior import TransitionPrior

if TYPE_CHECKING:
    from shopformer.predict.estimator import Shopformer

__all__ = ["load_bundle", "save_bundle"]

_FORMAT = "shopformer.predict.bundle"
_VERSION = 1
_HISTORY_ARRAYS = ("offsets", "items", "event_types", "timestamps")

Estimator = TypeVar("Estimator", bound="Shopformer")


def save_bundle(estimator: Shopformer, directory: str | Path) -> Path:
    """Writes a fitted estimator's bundle into `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.contiguous() for name, tensor in estimator.model_.state_dict().items()}
    save_file(state, directory / "weights.safetensors")
    estimator.item_features_.save(directory)
    estimator.user_encoder_.save(directory / "users.json")
    estimator.prior_.save(directory / "transitions")
    histories = {name: getattr(estimator.histories_, name) for name in _HISTORY_ARRAYS}
    arrays = {name: array for name, array in histories.items() if array is not None}
    np.savez(directory / "histories.npz", popularity=estimator.popularity_, **arrays)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "shopformer_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": estimator.model_config_.model_dump(mode="json"),
        "train": estimator.train_config.model_dump(mode="json"),
        "text_model": estimator.text_model,
        "n_items": estimator.item_features_.n_items,
        "event_vocabulary": list(estimator.event_vocabulary_),
        "default_event_type": estimator.default_event_type_,
        "time_resolution": estimator.time_resolution_,
        "transition_weight": estimator.prior_.weight,
        "neighbour_weight": estimator.prior_.neighbour_weight,
        "best_epoch": estimator.best_epoch_,
        "train_seconds": estimator.train_seconds_,
        "history": estimator.history_,
    }
    (directory / "bundle.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return directory


def load_bundle(cls: type[Estimator], directory: str | Path) -> Estimator:
    """Rebuilds a fitted estimator of class `cls` from a bundle folder."""
    directory = Path(directory)
    meta = _read_meta(directory)
    train_config = TrainConfig(**meta["train"])
    estimator = cls(model=ModelConfig(**meta["model"]), train=train_config, text_model=meta["text_model"])
    features = ItemFeatures.load(directory)
    n_event_types = len(meta["event_vocabulary"]) + FIRST_CODE
    estimator.model_config_ = estimator.model_config
    model = BehaviourTransformer.for_items(estimator.model_config_, features, n_event_types)
    model.load_state_dict(load_file(directory / "weights.safetensors"))
    model.eval()
    with np.load(directory / "histories.npz", allow_pickle=False) as arrays:
        stored = {name: arrays[name] for name in arrays.files}
    estimator.model_ = model
    estimator.item_features_ = features
    estimator.user_encoder_ = LabelEncoder.load(directory / "users.json")
    estimator.prior_ = TransitionPrior.load(
        directory / "transitions", meta["transition_weight"], meta.get("neighbour_weight", 0.0)
    )
    estimator.histories_ = SequenceArrays(*(stored.get(name) for name in _HISTORY_ARRAYS))
    estimator.popularity_ = stored["popularity"]
    estimator.event_vocabulary_ = tuple(meta["event_vocabulary"])
    estimator.default_event_type_ = meta["default_event_type"]
    estimator.time_resolution_ = meta["time_resolution"]
    estimator.best_epoch_, estimator.train_seconds_ = meta["best_epoch"], meta["train_seconds"]
    estimator.history_ = meta["history"]
    return estimator


def _read_meta(directory: Path) -> dict:
    path = directory / "bundle.json"
    if not path.is_file():
        raise DataError("not a Shopformer bundle folder (no bundle.json)", path=str(directory))
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT:
        raise DataError("not a Shopformer bundle", path=str(path), expected=_FORMAT)
    if meta.get("version") != _VERSION:
        raise DataError(f"bundle version {meta.get('version')} is not readable by this Shopformer",
                        path=str(path), expected=f"version {_VERSION}")
    return meta
