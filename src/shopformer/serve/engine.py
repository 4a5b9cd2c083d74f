"""One loaded bundle as the service uses it: batched recommendations, similar items, text search.

An `Engine` is built completely (model loaded, item vectors cached, a first batch scored) before
the service swaps it in, so a reload never makes a request wait on a half-loaded model. Its
methods that run the model are called from the service's one model thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE
from shopformer.errors import ShopformerError
from shopformer.evaluate.ranking import top_k_items
from shopformer.features.text import TextEncoder
from shopformer.predict.estimator import Shopformer
from shopformer.serve.insight import EngineInsight, user_events
from shopformer.serve.state import UserStates
from shopformer.serve.store import EventStore
from shopformer.serve.vectors import VectorIndex, top_k

__all__ = ["Engine", "Recommendation", "RecommendationQuery", "UnavailableError"]

#: How strongly a user's taste re-orders text matches (in standard deviations of the model score
#: among the candidates, against cosine similarity): relevance first, taste among close matches.
PERSONAL_WEIGHT = 0.05
_SEARCH_CANDIDATES = 100


class UnavailableError(ShopformerError):
    """The bundle lacks what a request needs (text embeddings, categories, prediction heads)."""

    def __init__(self, message: str, hint: str, *, status: int = 409) -> None:
        self.hint, self.status = hint, status
        super().__init__(message)


@dataclass(frozen=True)
class RecommendationQuery:
    """One history to recommend after (as `UserStates.history` returns it) and what to return."""

    history: tuple[np.ndarray, np.ndarray, np.ndarray]
    k: int
    filter_seen: bool = True
    #: Candidate mask over item codes (a category filter); None: every item.
    allowed: np.ndarray | None = None


@dataclass(frozen=True)
class Recommendation:
    item_ids: list[str]
    scores: list[float]
    #: "model", or "popular" when the history has no item the model knows (cold start).
    source: str


class Engine:
    """A loaded `Shopformer` bundle, its item vectors and the users' sequence states."""

    def __init__(self, model: Shopformer, bundle_dir: Path, text_cache_dir: Path | None) -> None:
        self.model, self.bundle_dir, self._text_cache_dir = model, bundle_dir, text_cache_dir
        features = model.item_features
        self.item_ids = features.item_ids.astype(str)
        self.item_codes = {item: code for code, item in enumerate(self.item_ids[FIRST_CODE:].tolist(), FIRST_CODE)}
        self.n_items = features.n_items
        self.meta = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
        self.states: UserStates | None = None
        self._category_masks: dict[str, np.ndarray] = {}
        self._predictor: Any = None

    @classmethod
    def load(cls, bundle_dir: str | Path, *, threads: int = 1, text_cache_dir: str | Path | None = None) -> Engine:
        """Loads the bundle and warms it up (item vectors cached, one batch scored)."""
        bundle_dir = Path(bundle_dir)
        model = Shopformer.load(bundle_dir)
        model.train_config.num_threads = threads  # scoring runs on this many torch threads
        engine = cls(model, bundle_dir, Path(text_cache_dir) if text_cache_dir else None)
        engine._warm_up()
        return engine

    def _warm_up(self) -> None:
        known = np.array([FIRST_CODE], dtype=np.int64)
        states = UserStates(self.model, self.item_codes, set())
        self.model.score_histories(states.sequences([(known, known, known)]))
        _ = self.item_index

    def restore(self, store: EventStore) -> None:
        """Users' states rebuilt from the event store (its newest events per user, its forgotten users)."""
        states = UserStates(self.model, self.item_codes, store.forgotten())
        # `recent` keeps each user's newest `max_len` in arrival order; `apply` inserts by time.
        states.apply(store.recent(states.max_len))
        self.states = states

    def event_name(self, code: int) -> str | None:
        """The event type behind an event-type code (None for the reserved codes and unknown ones)."""
        names = self.model.event_vocabulary
        return names[code - FIRST_CODE] if FIRST_CODE <= code < FIRST_CODE + len(names) else None

    @cached_property
    def insight(self) -> EngineInsight:
        """Profiles against this engine's model (loaded on first use, in the model thread)."""
        return EngineInsight(self.model, self.bundle_dir)

    @property
    def version(self) -> str:
        """Identifies the bundle: its folder and creation time."""
        return f"{self.bundle_dir.name}@{self.meta.get('created', 'unknown')}"

    # ----------------------------------------------------------------------------- recommendations

    def recommend(self, queries: Sequence[RecommendationQuery]) -> list[Recommendation]:
        """Top items after each history, all histories scored in one `score_histories` call."""
        # The library's cold-start rule: popularity where a history has no known item.
        scores, known = self.model.scores_with_fallback(self.states.sequences([q.history for q in queries]))
        k = min(max(q.k for q in queries), self.n_items - FIRST_CODE)
        top_codes, top_scores = top_k_items(scores, k, exclude=_seen_cells(queries), allowed=_allowed_rows(queries, self.n_items))
        results = []
        for row, query in enumerate(queries):
            keep = np.isfinite(top_scores[row, : query.k])
            codes = top_codes[row, : query.k][keep]
            results.append(Recommendation(self.item_ids[codes].tolist(), top_scores[row, : query.k][keep].tolist(),
                                          "model" if known[row] else "popular"))
        return results

    def category_mask(self, category: str) -> np.ndarray:
        """Items in `category` or below it: a full path ("Beauty > Skincare") or one level's name."""
        wanted = category.strip().lower()
        if wanted not in self._category_masks:
            paths = self.model.item_features.vocabularies.categories
            if not paths:
                raise UnavailableError("this bundle's catalog has no categories", "train with a catalog that has a category column")
            query = [part.strip() for part in wanted.split(">")]
            matched = [code for code, path in enumerate(paths, FIRST_CODE)
                       if _category_matches([p.strip() for p in path.lower().split(">")], query)]
            if not matched:
                raise LookupError(f"no item is in the category {category!r}")
            if len(self._category_masks) > 256:
                self._category_masks.clear()
            self._category_masks[wanted] = np.isin(self.model.item_features.category, matched)
        return self._category_masks[wanted]

    # ----------------------------------------------------------------------------- item vectors

    @cached_property
    def item_index(self) -> VectorIndex:
        """The model's item vectors (the output layer the scores are computed with)."""
        table = self.model.item_vectors()
        usable = np.arange(self.n_items) >= FIRST_CODE
        return VectorIndex(table, usable)

    def similar(self, item_id: str, k: int) -> tuple[list[str], list[float]]:
        """The `k` items whose model vectors are closest (cosine) to `item_id`'s."""
        code = self.item_codes.get(item_id)
        if code is None:
            raise LookupError(f"unknown item {item_id!r}: it is not in this bundle's catalog")
        codes, similarity = self.item_index.search(self.item_index.vectors[code], k, exclude=np.array([code]))
        return self.item_ids[codes].tolist(), similarity.tolist()

    @cached_property
    def text_index(self) -> VectorIndex:
        features = self.model.item_features
        if not features.text_dim or not features.has_text.any():
            raise UnavailableError("this bundle has no item text embeddings, so it cannot search the catalog by text",
                                   "train with a catalog that has titles or descriptions and model.use_text on")
        return VectorIndex(features.text, features.has_text & (np.arange(self.n_items) >= FIRST_CODE))

    @cached_property
    def _text_encoder(self) -> TextEncoder:
        return TextEncoder(self.meta["text_model"], cache_dir=self._text_cache_dir, progress=False)

    def search(self, query: str, k: int, history: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> dict[str, Any]:
        """Items whose text embedding is closest to the query's; with a history, re-ranked by taste."""
        index = self.text_index
        vector = self._text_encoder.encode([query])[0]
        codes, similarity = index.search(vector, max(k, _SEARCH_CANDIDATES) if history is not None else k)
        personal = np.zeros_like(similarity)
        if history is not None and len(codes) and (history[0] >= FIRST_CODE).any():
            row = self.model.score_histories(self.states.sequences([history])).numpy()[0, codes]
            spread = float(row.std()) or 1.0
            personal = ((row - row.mean()) / spread).astype(np.float32)
        order, blended = top_k(similarity + PERSONAL_WEIGHT * personal, k)
        return {"item_ids": self.item_ids[codes[order]].tolist(), "scores": blended.tolist(),
                "text_scores": similarity[order].tolist(), "personal_scores": personal[order].tolist()}

    # ----------------------------------------------------------------------------- prediction heads

    def check_prediction_heads(self) -> None:
        if not (self.bundle_dir / "tasks").is_dir():
            raise UnavailableError(
                "this bundle has no prediction heads (no tasks/ folder), so it cannot predict intent, propensity or churn",
                f"train prediction heads into the bundle ({self.bundle_dir / 'tasks'}) and reload the service",
                status=404)

    def predict(self, stored: pl.DataFrame, user_id: str, *, with_bundle_history: bool) -> dict[str, Any]:
        """The prediction heads' probabilities for one user at the current time.

        They read the user's events in the bundle's task log (unless the user was forgotten) followed
        by the user's stored events: a known user needs no ingestion to be scored, as for recommendations.
        """
        predictor = self.task_predictor()
        events = user_events(predictor.context.events if with_bundle_history else None, stored, user_id, "to predict from")
        return predictor.predict_users(events, now=int(time.time())).get(user_id, {})

    def task_predictor(self) -> Any:
        """The bundle's prediction heads (loaded on first use)."""
        self.check_prediction_heads()
        if self._predictor is None:
            try:
                # Heavy and optional: imported only when predictions are asked for.
                from shopformer.predict.tasks import TaskPredictor

                self._predictor = TaskPredictor.load(self.bundle_dir)
            except ImportError as exc:
                raise UnavailableError(f"the prediction heads need {exc.name}, which is not installed",
                                       f"pip install {exc.name}", status=409) from None
        return self._predictor


def _category_matches(path: list[str], query: list[str]) -> bool:
    if path[: len(query)] == query:
        return True
    return len(query) == 1 and query[0] in path


def _seen_cells(queries: Sequence[RecommendationQuery]) -> tuple[np.ndarray, np.ndarray]:
    """(row, item code) of the history items of the queries that filter seen items."""
    seen = [(row, q.history[0]) for row, q in enumerate(queries) if q.filter_seen]
    rows = [np.full(len(codes), row, dtype=np.int64) for row, codes in seen]
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(rows), np.concatenate([codes for _, codes in seen])) if seen else (empty, empty)


def _allowed_rows(queries: Sequence[RecommendationQuery], n_items: int) -> np.ndarray | None:
    """A `(len(queries), n_items)` candidate mask, or None when no query restricts its candidates."""
    if all(q.allowed is None for q in queries):
        return None
    return np.stack([np.ones(n_items, dtype=bool) if q.allowed is None else q.allowed for q in queries])
