"""Segments on profiles with a planted structure: recovered, stable across seeds, assignable online."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from shopformer.errors import DataError
from shopformer.insight.segments import Segments, fit_segments


def _profiles(n_per_group: int = 60, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Three planted groups: loyal big spenders, occasional buyers, browsers who never buy."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([0, 1, 2], n_per_group)
    frequency = np.choose(groups, [rng.poisson(12, len(groups)), rng.poisson(2, len(groups)), np.zeros(len(groups), int)])
    profiles = pl.DataFrame({
        "user_id": [f"u{i}" for i in range(len(groups))],
        "recency_days": np.choose(groups, [rng.uniform(lo, hi, len(groups)) for lo, hi in ((0, 2), (5, 10), (20, 40))]),
        "frequency": frequency, "monetary": frequency * rng.uniform(20, 30, len(groups)),
        "events": frequency * 5 + rng.poisson(10, len(groups)), "conversion": np.minimum(frequency / 20, 1.0),
        "lifecycle": np.choose(groups, [["active"] * len(groups), ["active"] * len(groups), ["churned"] * len(groups)]),
        "price_level": ["mid-range"] * len(groups),
    })
    vectors = rng.normal(size=(len(groups), 16)) + groups[:, None]
    return profiles, vectors, groups


def test_planted_groups_are_found_named_and_stable():
    profiles, vectors, groups = _profiles()
    segments = fit_segments(profiles, vectors)
    labels = segments.assign(profiles, vectors)
    assert segments.k == 3 and adjusted_rand_score(groups, labels) > 0.75
    assert min(segments.stability) >= 0.8 and set(segments.silhouettes) == set(range(3, 9))
    described = segments.describe(profiles, vectors)
    assert described["users"].sum() == profiles.height and len(set(segments.names)) == 3
    big = described.sort("purchases_per_user")["name"][-1]
    assert big.startswith("High-value") and any("Non-buying" in n or "lapsing" in n for n in segments.names)


def test_new_users_are_assigned_and_the_fit_round_trips(tmp_path):
    profiles, vectors, groups = _profiles()
    segments = fit_segments(profiles, vectors, k=3)
    fresh, fresh_vectors, fresh_groups = _profiles(10, seed=1)
    loaded = Segments.load(segments.save(tmp_path))
    assert np.array_equal(loaded.assign(fresh, fresh_vectors), segments.assign(fresh, fresh_vectors))
    assert adjusted_rand_score(fresh_groups, loaded.assign(fresh, fresh_vectors)) > 0.8
    assert loaded.map(fresh, fresh_vectors).shape == (fresh.height, 2) and loaded.names == segments.names


def test_prediction_columns_join_the_features_and_may_be_missing_later():
    profiles, vectors, groups = _profiles()
    scored = profiles.with_columns(churn_probability=pl.Series(groups / 2.0 + 0.1))
    segments = fit_segments(scored, vectors, k=3)
    assert segments.prediction_columns == ["churn_probability"]
    assert len(segments.assign(profiles, vectors)) == profiles.height  # unscored users sit at the mean


def test_bad_inputs_are_clear_errors():
    profiles, vectors, _ = _profiles(3)
    with pytest.raises(DataError, match="too few"):
        fit_segments(profiles.head(4))
    segments = fit_segments(profiles, vectors, k=3)
    with pytest.raises(DataError, match="user vectors"):
        segments.assign(profiles)
    with pytest.raises(DataError, match="lack the column"):
        fit_segments(profiles.drop("monetary"))
