"""Segments: k-means over the behaviour model's user vectors and each user's RFM, named from their traits.

    segments = fit_segments(profiles, vectors)            # k chosen by silhouette among stable k
    segments.assign(new_profiles, new_vectors)            # online: the nearest centroid
    segments.describe(profiles)                           # size, value share, tastes, risk, name

Two blocks of features: the RFM block (log recency, frequency, monetary, events, conversion,
standardised) and the vector block (the user vectors' first principal components, rescaled to half
the RFM block's total variance whatever the model's width). Taste varies as a continuum: at equal
weight k-means found a different clustering for each seed on the demo shop; at half weight three
seeds agree. Where the profiles carry the task heads' propensity and churn probabilities, a third
block holds them (standardised, 1.6x the RFM block's variance): next-period behaviour is what a
shop segments for, and on the demo shop's validation cut this block is what made the segments
explain more of it than RFM quantiles. A `k` is only chosen where three seeds agree (adjusted Rand
index ≥ `min_stability`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from threadpoolctl import threadpool_limits

from shopformer.errors import DataError
from shopformer.insight.naming import describe_segments

__all__ = ["PREDICTION_COLUMNS", "RFM_COLUMNS", "Segments", "fit_segments", "rfm_matrix", "segment_summary"]

#: Profile columns of the RFM block (log1p of the counts and value).
RFM_COLUMNS = ("recency_days", "frequency", "monetary", "events", "conversion")
_VECTOR_COMPONENTS = 8
_K_RANGE = range(3, 9)
_SEEDS = (0, 1, 2)
#: The vector block's total variance relative to the RFM block's.
_VECTOR_SHARE = 0.5
#: Profile columns of the prediction block, where present, and its variance relative to the RFM block's.
PREDICTION_COLUMNS = ("propensity_probability", "churn_probability")
_PREDICTION_SHARE = 1.6
#: Users k-means is fitted on (the rest are assigned to the nearest centroid).
_FIT_SAMPLE = 20_000
#: Users the silhouette is computed on (it is quadratic in the users).
_SILHOUETTE_SAMPLE = 3000


def rfm_matrix(profiles: pl.DataFrame) -> np.ndarray:
    """The RFM block `(n_users, 5)` of profiles (log1p of recency, frequency, monetary, events; conversion)."""
    missing = [c for c in RFM_COLUMNS if c not in profiles.columns]
    if missing:
        raise DataError(f"profiles lack the column(s) {missing} that segments read", column=missing[0])
    values = profiles.select(RFM_COLUMNS).fill_null(0.0).to_numpy().astype(np.float64)
    values[:, :4] = np.log1p(np.clip(values[:, :4], 0, None))
    return values


@dataclass
class Segments:
    """Fitted segments: the feature scaling, vector projection, centroids and the 2-D map's axes."""

    mean: np.ndarray
    scale: np.ndarray
    vector_mean: np.ndarray
    vector_axes: np.ndarray
    vector_weight: float
    centroids: np.ndarray
    map_mean: np.ndarray
    map_axes: np.ndarray
    #: Per seed agreement with the first seed's clustering, and the silhouette of each k tried.
    stability: list[float] = field(default_factory=list)
    silhouettes: dict[int, float] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    prediction_columns: list[str] = field(default_factory=list)
    prediction_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prediction_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def k(self) -> int:
        return len(self.centroids)

    def features(self, profiles: pl.DataFrame, vectors: np.ndarray | None) -> np.ndarray:
        """The standardised clustering features of users (same rows as `profiles`)."""
        blocks = [(rfm_matrix(profiles) - self.mean) / self.scale]
        if len(self.vector_axes):
            if vectors is None or len(vectors) != profiles.height:
                raise DataError("these segments read user vectors: pass one per profile row", column="user_vector")
            blocks.append((np.asarray(vectors, dtype=np.float64) - self.vector_mean) @ self.vector_axes.T * self.vector_weight)
        if self.prediction_columns:
            raw = _predictions(profiles, self.prediction_columns, self.prediction_mean)
            blocks.append((raw - self.prediction_mean) / self.prediction_scale)
        return np.hstack(blocks)

    def assign(self, profiles: pl.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """The segment of each user: the nearest centroid (works for users never seen in fitting)."""
        x = self.features(profiles, vectors)
        return np.argmin(((x[:, None, :] - self.centroids[None]) ** 2).sum(-1), axis=1)

    def map(self, profiles: pl.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """2-D coordinates `(n, 2)` of users on the segment map (the features' first principal plane)."""
        return (self.features(profiles, vectors) - self.map_mean) @ self.map_axes.T

    def describe(self, profiles: pl.DataFrame, vectors: np.ndarray | None = None, churn: np.ndarray | None = None) -> pl.DataFrame:
        """One row per segment: name, size, share of users and of value, purchases per user, conversion,
        median recency, top category, price level, churn risk (predicted churn where given, else the
        share of at-risk and churned users) and a sentence."""
        if churn is None and "churn_probability" in profiles.columns:
            churn = profiles["churn_probability"].fill_null(profiles["churn_probability"].mean()).to_numpy()
        return describe_segments(profiles, self.assign(profiles, vectors), self.k, churn)

    def save(self, directory: str | Path) -> Path:
        """Writes `segments.json` + `segments.npz` into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        np.savez(directory / "segments.npz", **arrays)
        meta = {"vector_weight": self.vector_weight, "stability": self.stability, "names": self.names,
                "prediction_columns": self.prediction_columns,
                "silhouettes": {str(k): v for k, v in self.silhouettes.items()}}
        (directory / "segments.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Segments:
        directory = Path(directory)
        if not (directory / "segments.json").is_file():
            raise DataError(f"{directory} holds no segments (segments.json)", column="segments")
        meta = json.loads((directory / "segments.json").read_text(encoding="utf-8"))
        with np.load(directory / "segments.npz", allow_pickle=False) as arrays:
            values = {name: arrays[name] for name in _ARRAYS}
        return cls(**values, vector_weight=meta["vector_weight"], stability=meta["stability"], names=meta["names"],
                   prediction_columns=meta["prediction_columns"],
                   silhouettes={int(k): v for k, v in meta["silhouettes"].items()})


_ARRAYS = ("mean", "scale", "vector_mean", "vector_axes", "centroids", "map_mean", "map_axes", "prediction_mean",
           "prediction_scale")


def _predictions(profiles: pl.DataFrame, columns: list[str], fill: np.ndarray | None = None) -> np.ndarray:
    """The prediction block's raw values; a user the heads did not score (a missing column or a null)
    gets `fill` (the fitted base's mean: no pull toward any segment), else 0.5."""
    fill = np.full(len(columns), 0.5) if fill is None or not len(fill) else fill
    return np.column_stack([profiles[c].fill_null(f).to_numpy().astype(np.float64) if c in profiles.columns
                            else np.full(profiles.height, f) for c, f in zip(columns, fill, strict=True)])


def fit_segments(profiles: pl.DataFrame, vectors: np.ndarray | None = None, *, k: int | None = None,
                 min_stability: float = 0.8) -> Segments:
    """Fits segments on profiles (and the model's user vectors, one row per profile, when given).

    With `k=None` every k in 3..8 is clustered with three seeds; among the k whose clusterings agree
    (mean ARI ≥ `min_stability`) the one with the best silhouette wins (the most stable k if none does).
    """
    if profiles.height < 2 * max(_K_RANGE.start, k or 0):
        raise DataError(f"{profiles.height} users are too few to segment", column="user_id")
    rfm = rfm_matrix(profiles)
    mean, scale = rfm.mean(0), np.where(rfm.std(0) > 0, rfm.std(0), 1.0)
    segments = Segments(mean, scale, np.zeros(0), np.zeros((0, 0)), 0.0, np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)))
    if vectors is not None:
        segments.vector_mean, segments.vector_axes, segments.vector_weight = _vector_projection(np.asarray(vectors, float), rfm.shape[1])
    segments.prediction_columns = [c for c in PREDICTION_COLUMNS if c in profiles.columns and profiles[c].is_not_null().any()]
    if segments.prediction_columns:
        raw = _predictions(profiles, segments.prediction_columns)
        spread = np.where(raw.std(0) > 0, raw.std(0), 1.0)
        segments.prediction_mean = raw.mean(0)
        segments.prediction_scale = spread / np.sqrt(_PREDICTION_SHARE * rfm.shape[1] / len(segments.prediction_columns))
    x = segments.features(profiles, vectors)
    x = x[np.random.default_rng(0).permutation(len(x))[:_FIT_SAMPLE]]
    candidates = [k] if k else [c for c in _K_RANGE if c < profiles.height // 2]
    # One BLAS/OpenMP thread: k-means ran 30x slower on two busy cores when its threads contended.
    with threadpool_limits(limits=1):
        tried = {c: _cluster(x, c) for c in candidates}
    segments.silhouettes = {c: score for c, (_, _, score) in tried.items()}
    stable = [c for c, (_, ari, _) in tried.items() if np.mean(ari) >= min_stability]
    best = max(stable, key=lambda c: tried[c][2]) if stable else max(tried, key=lambda c: np.mean(tried[c][1]))
    segments.centroids, segments.stability = tried[best][0], tried[best][1]
    segments.map_mean, segments.map_axes = x.mean(0), _principal_axes(x, 2)
    segments.names = segments.describe(profiles, vectors)["name"].to_list()
    return segments


def _cluster(x: np.ndarray, k: int) -> tuple[np.ndarray, list[float], float]:
    """Centroids of the first seed, ARIs of the other seeds against it, and its silhouette."""
    fits = [KMeans(k, n_init=25, random_state=seed).fit(x) for seed in _SEEDS]
    aris = [float(adjusted_rand_score(fits[0].labels_, f.labels_)) for f in fits[1:]]
    sample = np.random.default_rng(0).permutation(len(x))[:_SILHOUETTE_SAMPLE]
    labels = fits[0].labels_[sample]
    score = float(silhouette_score(x[sample], labels)) if len(set(labels)) > 1 else -1.0
    return fits[0].cluster_centers_, aris, score


def _vector_projection(vectors: np.ndarray, rfm_width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, principal axes and the weight that gives the projected vectors the RFM block's variance."""
    mean = vectors.mean(0)
    axes = _principal_axes(vectors, min(_VECTOR_COMPONENTS, vectors.shape[1]))
    variance = ((vectors - mean) @ axes.T).var(0).sum()
    return mean, axes, float(np.sqrt(_VECTOR_SHARE * rfm_width / variance)) if variance > 0 else 0.0


def _principal_axes(x: np.ndarray, n: int) -> np.ndarray:
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:n]


def segment_summary(segments: Segments) -> dict[str, Any]:
    """What a report or benchmark quotes of a fit: k, stability across seeds and silhouettes."""
    return {"k": segments.k, "ari_across_seeds": segments.stability, "silhouette_by_k": segments.silhouettes,
            "names": segments.names}
