"""Profiles of a fitted model's users: the insight layer's profiles and segments joined with the
model's predictions, next items and user vectors. One path for `Shopformer.profile`, the
`shopformer profile` command, the report and `GET /v1/users/{id}/profile`.

    insight = BundleInsight.open("bundle/")          # the model, its task heads, segments, event log
    insight.fit_segments()                             # written to bundle/insight/
    insight.profiles(["u17"])                          # one row per user
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE
from shopformer.errors import UnknownUserError
from shopformer.insight.anomaly import score_users
from shopformer.insight.profiles import build_profiles, lifecycle_rule
from shopformer.insight.segments import Segments, fit_segments
from shopformer.predict.fitted import FittedBehaviourModel

__all__ = ["INSIGHT_DIR", "BundleInsight", "history_events", "item_attributes", "profile_users", "with_predictions"]

#: Bundle subfolder holding the fitted segments.
INSIGHT_DIR = "insight"
#: Task heads whose probability a profile carries (intent: of the user's latest session).
_PROFILE_TASKS = ("intent", "propensity", "churn")


def history_events(model: FittedBehaviourModel, users: Sequence[str] | None = None) -> pl.DataFrame:
    """The events the model keeps of each user (its last `max_len`) as an event-contract frame."""
    users = model.known_users() if users is None else [str(u) for u in users]
    histories = model.user_histories(users)
    times = histories.timestamps if histories.timestamps is not None else np.arange(len(histories.items))
    vocabulary = np.asarray(model.event_vocabulary, dtype=object)
    types = histories.event_types if histories.event_types is not None else np.full(len(histories.items), FIRST_CODE)
    return pl.DataFrame({
        "user_id": np.repeat(np.asarray(users, dtype=object), histories.lengths).astype(str),
        "item_id": model.item_features.item_ids[histories.items].astype(str),
        "timestamp": np.asarray(times, dtype=np.int64),
        "event_type": vocabulary[np.clip(types - FIRST_CODE, 0, len(vocabulary) - 1)].astype(str),
    }, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "event_type": pl.String})


def item_attributes(model: FittedBehaviourModel, catalog: pl.DataFrame | None = None) -> pl.DataFrame:
    """`item_id, category, brand` as the model's item table encodes them, with `catalog`'s other
    columns (e.g. price) joined on; the catalog's own category and brand win where it has them."""
    features, vocab = model.item_features, model.item_features.vocabularies

    def names(codes: np.ndarray, words: list[str]) -> list[str | None]:
        return [words[c - FIRST_CODE] if c >= FIRST_CODE else None for c in codes.tolist()]

    table = pl.DataFrame({"item_id": features.item_ids[FIRST_CODE:].astype(str),
                          "category": names(features.category[FIRST_CODE:], vocab.categories),
                          "brand": names(features.brand[FIRST_CODE:], vocab.brands)},
                         schema={"item_id": pl.String, "category": pl.String, "brand": pl.String})
    if catalog is None:
        return table
    own = [c for c in ("category", "brand") if c in catalog.columns]
    table = table.join(catalog, on="item_id", how="full", coalesce=True, suffix="_catalog")
    return table.with_columns(pl.coalesce(f"{c}_catalog", c).alias(c) for c in own).drop(f"{c}_catalog" for c in own)


def profile_users(model: FittedBehaviourModel, users: Sequence[str] | None, events: pl.DataFrame,
                  catalog: pl.DataFrame | None = None, *, predictor=None, segments: Segments | None = None,
                  next_items: int = 5, population: pl.DataFrame | None = None, now: int | None = None,
                  predictions: pl.DataFrame | None = None, anomalies: pl.DataFrame | None = None) -> pl.DataFrame:
    """One profile row per user (default: every user of `events`): `insight.profiles.build_profiles`'s
    columns, the lifecycle rule, `next_items`, the task probabilities, `segment`/`segment_name` and
    `user_vector` (the Transformer's state after the user's history). `catalog` is as
    `item_attributes` gives it; `population` the base's profiles that RFM quintiles rank within."""
    rule = lifecycle_rule(events)
    if users is not None:
        users = [str(u) for u in users]
        known = set(events.filter(pl.col("user_id").is_in(users))["user_id"].unique().to_list())
        missing = [u for u in users if u not in known]
        if missing:
            raise UnknownUserError(f"user {missing[0]!r} has no events: there is nothing to profile")
        now = int(events["timestamp"].max()) if now is None else now
        events = events.filter(pl.col("user_id").is_in(users))
    table = build_profiles(events, catalog, now=now, rule=rule, population=population)
    ids = table["user_id"].to_list()
    vectors = model.history_vectors(model.user_histories(ids))
    table = table.with_columns(lifecycle_rule=pl.lit(rule.describe()),
                               user_vector=pl.Series(vectors.round(5).tolist(), dtype=pl.List(pl.Float32)))
    table = _with_next_items(table, model, next_items)
    if predictions is not None:
        table = table.join(predictions, on="user_id", how="left")
    elif predictor is not None:
        table = with_predictions(table, predictor)
    if anomalies is not None:
        table = table.join(anomalies.rename({"flagged": "anomaly_flagged", "reasons": "anomaly_reasons"}), on="user_id", how="left")
    if segments is not None:
        labels = segments.assign(table, vectors)
        table = table.with_columns(segment=pl.Series(labels, dtype=pl.Int64),
                                   segment_name=pl.Series([segments.names[s] for s in labels], dtype=pl.String))
    return table


def _with_next_items(table: pl.DataFrame, model: FittedBehaviourModel, k: int) -> pl.DataFrame:
    if not k:
        return table
    recs = model.recommend(users=table["user_id"].to_list(), k=k)
    lists = recs.group_by("user_id", maintain_order=True).agg(next_items=pl.col("item_id"))
    return table.join(lists, on="user_id", how="left")


def with_predictions(table: pl.DataFrame, predictor) -> pl.DataFrame:
    """Each profiled task's probability at the end of the predictor's log (intent: the latest session)."""
    known = set(predictor.context.events["user_id"].unique().to_list())
    users = [u for u in table["user_id"].to_list() if u in known]
    for task in (t for t in _PROFILE_TASKS if t in predictor.models):
        scored = predictor.predict_proba(task, users=users) if users else None
        column = f"{task}_probability"
        if scored is None or scored.is_empty():
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
            continue
        latest = scored.sort("cutoff").group_by("user_id").agg(pl.col("probability").last().round(4).alias(column))
        table = table.join(latest, on="user_id", how="left")
    return table


@dataclass
class BundleInsight:
    """A bundle's model with what its profiles read: the task heads, the event log, the segments."""

    bundle_dir: Path
    model: FittedBehaviourModel
    events: pl.DataFrame
    catalog: pl.DataFrame | None
    predictor: object | None
    segments: Segments | None
    #: Every user's base profile (no predictions): the population RFM quintiles rank within.
    _population: pl.DataFrame | None = None
    _anomalies: pl.DataFrame | None = None
    _scored: pl.DataFrame | None = None

    @classmethod
    def open(cls, bundle_dir: str | Path, model: FittedBehaviourModel | None = None) -> BundleInsight:
        """Loads the bundle (its model unless given); the event log is the task heads' (if any), else
        the model's stored histories."""
        from shopformer.predict.estimator import Shopformer
        from shopformer.predict.tasks import TaskPredictor

        bundle_dir = Path(bundle_dir)
        model = model or Shopformer.load(bundle_dir)
        predictor = TaskPredictor.load(bundle_dir) if (bundle_dir / "tasks").is_dir() else None
        if predictor is not None:
            events = predictor.context.events
            catalog = predictor.context.catalog.frame if predictor.context.catalog is not None else None
        else:
            events, catalog = history_events(model), None
        catalog = item_attributes(model, catalog)
        folder = bundle_dir / INSIGHT_DIR
        segments = Segments.load(folder) if (folder / "segments.json").is_file() else None
        return cls(bundle_dir, model, events, catalog, predictor, segments)

    def profiles(self, users: Sequence[str] | None = None, next_items: int = 5) -> pl.DataFrame:
        """Profiles of `users` (default: everyone in the bundle's log)."""
        return profile_users(self.model, users, self.events, self.catalog, predictor=self.predictor,
                             segments=self.segments, next_items=next_items, population=self.population,
                             anomalies=self.anomalies)

    @property
    def anomalies(self) -> pl.DataFrame:
        """Every user's bot and fraud score against the whole base, with reasons for the flagged."""
        if self._anomalies is None:
            self._anomalies = score_users(self.events)
        return self._anomalies

    @property
    def population(self) -> pl.DataFrame:
        if self._population is None:
            self._population = build_profiles(self.events, self.catalog)
        return self._population

    @property
    def scored_population(self) -> pl.DataFrame:
        """The population's profiles with the task heads' probabilities (where the bundle has heads)."""
        if self._scored is None:
            self._scored = self.population if self.predictor is None else with_predictions(self.population, self.predictor)
        return self._scored

    def fit_segments(self, k: int | None = None) -> Segments:
        """Fits segments on every user's profile and vector and writes them into the bundle."""
        base = self.scored_population
        vectors = self.model.history_vectors(self.model.user_histories(base["user_id"].to_list()))
        self.segments = fit_segments(base, vectors, k=k)
        self.segments.save(self.bundle_dir / INSIGHT_DIR)
        return self.segments
