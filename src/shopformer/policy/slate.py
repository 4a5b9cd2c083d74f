"""A slate bandit over the behaviour model's candidates: which of its top items to show, learned from clicks.

The behaviour Transformer proposes candidates (its top `n` items after the user's history); one
linear model shared by all items scores each (user, candidate) from

    phi = [1, the candidate's model score standardised within the candidates,
           P item_vector, (P item_vector) * (P user_taste)]

where P projects the model's item vectors on their top principal directions and the user's taste
is the mean projected vector of their recent items. Parameters are shared, so what is learned from
clicks on some items carries over to every item with a vector, new items included: an item added
to the catalog after training gets its vector from its text and attributes (`add_items`) and can be
shown from the first round. Slots are filled greedily by an upper confidence bound whose width
follows the clicks' estimated noise (`bandits.LinUCB` with one arm, i.e. shared parameters; Li et al., 2010).
"""

from __future__ import annotations

import numpy as np

from shopformer.data.codes import FIRST_CODE
from shopformer.policy.bandits import LinUCB

__all__ = ["SlateBandit", "SlateFeatures", "SlatePolicy"]


class SlateFeatures:
    """Turns model scores, candidate item codes and user histories into `phi` rows."""

    def __init__(self, item_vectors: np.ndarray, *, components: int = 8) -> None:
        vectors = np.asarray(item_vectors, dtype=np.float64)
        real = np.arange(len(vectors)) >= FIRST_CODE  # the padding and unknown rows stay out of the mean and basis
        centred = vectors - vectors[real].mean(0)
        _, _, basis = np.linalg.svd(centred[real], full_matrices=False)
        projected = centred @ basis[:components].T
        self.items = projected / (projected[real].std(0) + 1e-9)
        self.dim = 2 + 2 * self.items.shape[1]

    def taste(self, history: np.ndarray) -> np.ndarray:
        return self.items[history].mean(0) if len(history) else np.zeros(self.items.shape[1])

    def __call__(self, scores: np.ndarray, candidates: np.ndarray, history: np.ndarray) -> np.ndarray:
        """(candidates, dim) features of one user's candidates (`scores`: the model's, same order)."""
        standard = (scores - scores.mean()) / (scores.std() + 1e-9)
        items = self.items[candidates]
        return np.hstack([np.ones((len(candidates), 1)), standard[:, None], items, items * self.taste(history)])


class SlateBandit:
    """One ridge regression of clicks on `phi`, shared by every item and slot: a single-arm LinUCB
    whose width follows the clicks' estimated noise."""

    def __init__(self, dim: int, *, alpha: float = 1.0, ridge: float = 1.0) -> None:
        self.arm = LinUCB(1, dim, alpha=alpha, ridge=ridge, noise_scaled=True)

    @property
    def count(self) -> int:
        return int(self.arm.counts.sum())

    def update(self, features: np.ndarray, clicks: np.ndarray) -> SlateBandit:
        """Learns from shown items: their features and whether each was clicked."""
        features = np.atleast_2d(features)
        self.arm.update(features, np.zeros(len(features), dtype=int), np.asarray(clicks, dtype=np.float64))
        return self

    def scores(self, features: np.ndarray) -> np.ndarray:
        return self.arm.scores(features)[:, 0]

    def choose(self, features: np.ndarray, slots: int) -> np.ndarray:
        """Row indices of the `slots` candidates to show, best first."""
        return np.argsort(-self.scores(features), kind="stable")[:slots]


class SlatePolicy:
    """The slate bandit of the decision service: picks a slate from the model's candidates, learns
    from which shown items were clicked. Its features come from one bundle's item vectors, so a
    new bundle starts a new policy (`model_version` says which)."""

    def __init__(self, item_vectors: np.ndarray, model_version: str, *, alpha: float = 1.0) -> None:
        self.features, self.model_version = SlateFeatures(item_vectors), model_version
        self.bandit = SlateBandit(self.features.dim, alpha=alpha)

    def propose(self, scores: np.ndarray, candidates: np.ndarray, history: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (into `candidates`) of the slate, best first, and their feature rows."""
        phi = self.features(np.asarray(scores, dtype=np.float64), candidates, history)
        chosen = self.bandit.choose(phi, size)
        return chosen, phi[chosen]

    def learn(self, features: np.ndarray, clicked: np.ndarray) -> None:
        self.bandit.update(features, clicked)
