"""What a fitted `Shopformer` shows other layers: the `models.base.BehaviourModel` protocol and the
read-only views serve and the CLI use, so no module outside `predict/` reads a fitted attribute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from shopformer.data.prepare import LabelEncoder
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import NotFittedError
from shopformer.features.items import ItemFeatures
from shopformer.models.config import ModelConfig
from shopformer.models.inputs import gather_windows
from shopformer.models.prior import TransitionPrior
from shopformer.models.transformer import BehaviourTransformer
from shopformer.runtime import torch_threads
from shopformer.train import TrainConfig

__all__ = ["FittedBehaviourModel"]


class FittedBehaviourModel:
    """Public views of the fitted state; `Shopformer` sets the trailing-underscore attributes."""

    train_config: TrainConfig
    model_config_: ModelConfig
    model_: BehaviourTransformer
    item_features_: ItemFeatures
    user_encoder_: LabelEncoder
    prior_: TransitionPrior
    histories_: SequenceArrays
    event_vocabulary_: tuple[str, ...]
    default_event_type_: int
    history_: list[dict]
    best_epoch_: int
    train_seconds_: float
    privacy_: dict | None

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Shopformer is not fitted yet: call fit(data) or Shopformer.load(bundle_dir)")

    @property
    def max_len(self) -> int:
        return self.model_config_.max_len

    @property
    def uses_time_gaps(self) -> bool:
        return self.model_config_.use_time_gaps

    @property
    def event_vocabulary(self) -> tuple[str, ...]:
        return self.event_vocabulary_

    @property
    def default_event_type(self) -> int:
        """Event-type code given to events without one (the most common type in training)."""
        return self.default_event_type_

    @property
    def num_threads(self) -> int:
        return self.train_config.num_threads

    @property
    def transformer(self) -> BehaviourTransformer:
        self._check_fitted()
        return self.model_

    @property
    def item_features(self) -> ItemFeatures:
        """The item table: ids by code, attributes, price buckets, text embeddings."""
        self._check_fitted()
        return self.item_features_

    @property
    def config(self) -> ModelConfig:
        """The configuration the model was built with (side features the data lacks switched off)."""
        return self.model_config_

    @property
    def training_summary(self) -> dict[str, Any]:
        """Metrics per epoch (`history`), `best_epoch`, `train_seconds`, the count prior's weights and, for a
        differentially private model, its `privacy` (epsilon spent, delta, noise multiplier...; else None)."""
        return {"history": self.history_, "best_epoch": self.best_epoch_, "train_seconds": self.train_seconds_,
                "prior_weights": {"transitions": self.prior_.weight, "neighbours": self.prior_.neighbour_weight},
                "privacy": self.privacy_}

    def item_codes(self, item_ids: Sequence[str]) -> np.ndarray:
        return self.item_features.codes([str(i) for i in item_ids])

    def encode_users(self, user_ids: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        return self.user_encoder_.transform([str(u) for u in user_ids])

    def known_users(self) -> list[str]:
        """Ids of the users the model was fitted on, in code order (the first has code 2)."""
        self._check_fitted()
        return self.user_encoder_.classes.to_list()

    def stored_histories(self) -> SequenceArrays:
        """Each user's last `max_len` events, one row per user code (reserved codes: empty rows)."""
        self._check_fitted()
        return self.histories_

    def last_event_time(self) -> int | None:
        times = self.stored_histories().timestamps
        return int(times.max()) if times is not None and len(times) else None

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        """The output layer's item vectors `(n_items, dim)`: scores are `state @ item_vectors.T`."""
        return self.transformer.item_table().numpy()

    @torch.no_grad()
    def history_vectors(self, histories: SequenceArrays) -> np.ndarray:
        """The Transformer's state after each history `(n, dim)`: the user vector behind its scores
        (zero rows for empty histories)."""
        self._check_fitted()
        model, max_len = self.transformer, self.max_len
        model.eval()
        ends = histories.offsets[1:]
        starts = np.maximum(histories.offsets[:-1], ends - max_len)
        vectors = np.zeros((len(ends), model.config.dim), dtype=np.float32)
        filled = np.flatnonzero(ends > starts)
        with torch_threads(self.num_threads):
            for i in range(0, len(filled), 1024):
                rows = filled[i : i + 1024]
                batch = gather_windows(histories, starts[rows], ends[rows])
                vectors[rows] = model.next_item_hidden(batch.items, batch.event_types, batch.timestamps).numpy()
        return vectors

    def profile(self, users: Sequence[str] | None = None, events: Any = None, catalog: Any = None) -> Any:
        """Profiles (`shopformer.predict.insight.profile_users`) of `users` (default: every user of
        `events`) from `events`, a polars frame of the event contract (default: the last `max_len`
        events the model keeps of each user), with `catalog`'s category, brand and price."""
        # Imported here: predict.insight builds on this module's class.
        from shopformer.insight.profiles import build_profiles
        from shopformer.predict.insight import history_events, item_attributes, profile_users

        events = history_events(self) if events is None else events
        catalog = item_attributes(self, getattr(catalog, "frame", catalog))
        population = build_profiles(events, catalog) if users is not None else None
        return profile_users(self, users, events, catalog, population=population)

    def explain(self, user_id: str, item: str | None = None, task: str | None = None, k: int = 5, **options: Any) -> dict:
        """Which of `user_id`'s past events pushed the top recommendation (or `item`'s score, or, with
        `tasks=TaskPredictor`, `task`'s probability), with signed weights and a sentence; the options
        are `shopformer.predict.explain.explain`'s."""
        # Imported here: predict.explain builds on this module's class.
        from shopformer.predict.explain import explain

        return explain(self, user_id, item=item, task=task, k=k, **options)
