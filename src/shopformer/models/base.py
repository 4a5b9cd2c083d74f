"""What task models and insight see of a fitted behaviour model: a small protocol, not the estimator.

`tasks/` encode their examples' histories and score items through these methods only; the
estimator in `predict/` implements them and hands itself over, so no layer below `predict`
imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from shopformer.data.sequences import SequenceArrays

if TYPE_CHECKING:
    from shopformer.data.schema import Catalog
    from shopformer.models.transformer import BehaviourTransformer

__all__ = ["BehaviourModel"]


@runtime_checkable
class BehaviourModel(Protocol):
    """A fitted next-item behaviour model over item codes (0 pads, 1 is unknown, real items from 2)."""

    @property
    def max_len(self) -> int:
        """Most recent events the model reads of a history."""

    @property
    def uses_time_gaps(self) -> bool:
        """Whether histories should carry timestamps."""

    @property
    def event_vocabulary(self) -> tuple[str, ...]:
        """Event-type names; name `k` has code `k + 2`."""

    @property
    def num_threads(self) -> int:
        """Torch threads the model scores on."""

    @property
    def transformer(self) -> BehaviourTransformer:
        """The fitted network (task models pool or fine-tune its states)."""

    def item_codes(self, item_ids: Sequence[str]) -> np.ndarray:
        """Codes of item ids; unknown ids get code 1."""

    def encode_users(self, user_ids: Sequence[str]) -> np.ndarray:
        """Codes of user ids; users the model was not fitted on get code 1."""

    def last_event_time(self) -> int | None:
        """Timestamp of the latest event the model was fitted on (None for order-only logs)."""

    def score_histories(self, histories: SequenceArrays) -> torch.Tensor:
        """Scores `(n_histories, n_items)` of the next item after each non-empty history."""

    def add_items(self, catalog: Catalog) -> BehaviourModel:
        """Makes catalog items never seen in fitting scorable (by their side features)."""

    def save(self, directory: str | Path) -> Path:
        """Writes the model so that the estimator's `load` reads it back."""
