"""Who the users are, for the report and the dashboard: segments and the segment map of a bundle's users.

One function over `predict.insight.BundleInsight`, so the report's segment map and the dashboard's
are the same picture. Segments saved in the bundle (`BundleInsight.fit_segments`) are used
as they are; otherwise they are fitted here, and not written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shopformer.insight.segments import fit_segments
from shopformer.predict.insight import BundleInsight

__all__ = ["UserInsight", "user_insight"]


@dataclass(frozen=True)
class UserInsight:
    """Profiles (one row per user), the segment table, and per profile row its map point."""

    profiles: pl.DataFrame
    summary: pl.DataFrame
    #: `user_id, x, y, segment, segment_name`: one row per profile, in profile order.
    points: pl.DataFrame


def user_insight(insight: BundleInsight, churn: pl.DataFrame | None = None, *, max_users: int | None = None) -> UserInsight:
    """Profiles of the bundle's users, their segments (RFM and model vectors) and the 2-D map.

    `churn` (`user_id, probability`) makes the segment table's churn risk the predicted one; without
    it, the share of at-risk and churned users stands in. `max_users` keeps a fixed random sample of
    that many users (their RFM scores stay ranked among everyone).
    """
    profiles = insight.scored_population if insight.segments is not None and insight.segments.prediction_columns else insight.population
    if max_users is not None and profiles.height > max_users:
        profiles = profiles.sample(max_users, seed=0).sort("user_id")
    users = profiles["user_id"].to_list()
    vectors = insight.model.history_vectors(insight.model.user_histories(users))
    segments = insight.segments or fit_segments(profiles, vectors)
    labels = segments.assign(profiles, vectors)
    summary = segments.describe(profiles, vectors=vectors, churn=_churn_risk(profiles, churn))
    names = np.asarray(summary["name"].to_list(), dtype=object)
    xy = segments.map(profiles, vectors)
    points = pl.DataFrame({"user_id": users, "x": xy[:, 0].round(4), "y": xy[:, 1].round(4),
                           "segment": labels.astype(np.int64), "segment_name": names[labels].astype(str)})
    return UserInsight(profiles, summary, points)


def _churn_risk(profiles: pl.DataFrame, churn: pl.DataFrame | None) -> np.ndarray | None:
    """Predicted churn per profile row; users the task log does not score get the mean."""
    if churn is None or churn.is_empty():
        return None
    joined = profiles.select("user_id").join(churn.select("user_id", "probability"), on="user_id", how="left")
    return joined["probability"].fill_null(float(churn["probability"].mean())).to_numpy()
