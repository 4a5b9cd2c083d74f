"""Bot, abuse and fraud scores of users: unsupervised detectors over their signals, with reasons.

`score_users(events)` is the one call: it builds each user's signals (`insight.fraud`: behaviour,
and with an account table accounts sharing a device or IP, and with a behaviour model the
surprisal of their items), scores them, flags the top share and writes why in words.

Detectors (`AnomalyDetector(method=...)`):
- "tail": each signal has a known suspicious direction (bots are fast, fraudsters buy at once); a
  user's share of users at least as extreme is its empirical tail probability p, and the score is
  the sum of -log p over the signals (the combination ECOD uses, one-sided and over these signals only);
- "iforest" (scikit-learn), "ecod" and "copod" (PyOD): generic detectors over all signals, both tails;
- "default": where each of "tail" (counted twice) and the three generic detectors places a user among
  the fitted users (the share scoring lower), averaged: a user extreme in a way no signal names
  still rises, while the signals lead; in [0, 1] and the same whether users are scored alone or together.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import polars as pl

from shopformer.data.schema import EventLog
from shopformer.errors import ConfigError, DataError, NotFittedError
from shopformer.insight.fraud import (
    SHARED_COLUMNS,
    SIGNALS,
    Signal,
    account_features,
    behaviour_features,
    sequence_surprisal,
    surprisal_signal,
)
from shopformer.models.base import BehaviourModel

__all__ = ["INSTALL_HINT", "METHODS", "REASON_SHARE", "AnomalyDetector", "GenericDetector", "reasons_for", "score_users", "user_signals"]

METHODS = ("default", "tail", "iforest", "ecod", "copod")
GENERIC = ("iforest", "ecod", "copod")
INSTALL_HINT = "pip install 'shopformer[insight]'"
#: A signal names a reason when at most this share of users (or the flagged share, if larger) is as extreme.
REASON_SHARE = 0.02
_MAX_REASONS = 3
_NO_SINGLE_REASON = "an unusual combination of signals, none extreme alone"


def _pyod_detector(name: str):
    try:
        module = importlib.import_module(f"pyod.models.{name}")
    except ImportError:
        raise ConfigError(f"the {name.upper()} detector needs PyOD: {INSTALL_HINT}") from None
    return getattr(module, name.upper())()


class GenericDetector:
    """IsolationForest (scikit-learn), ECOD or COPOD (PyOD) on a feature matrix; `score` is higher for outliers."""

    def __init__(self, method: str, seed: int = 0) -> None:
        if method not in GENERIC:
            raise ConfigError(f"unknown generic detector {method!r}: use one of {', '.join(GENERIC)}")
        self.method = method
        self.seed = seed

    def fit(self, x: np.ndarray) -> GenericDetector:
        # A column constant over the fitted rows says nothing about them (and PyOD's skewness warns on it).
        self.varying_ = np.ptp(x, axis=0) > 0
        if not self.varying_.any():
            raise DataError(f"no feature varies across the {len(x)} rows: nothing for {self.method} to learn")
        if self.method == "iforest":
            from sklearn.ensemble import IsolationForest

            self.model_ = IsolationForest(random_state=self.seed).fit(x[:, self.varying_])
        else:
            self.model_ = _pyod_detector(self.method).fit(x[:, self.varying_])
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        x = x[:, self.varying_]
        # scikit-learn's score_samples is higher for normal rows; PyOD's decision_function is higher for outliers.
        if self.method == "iforest":
            return -self.model_.score_samples(x)
        return self.model_.decision_function(x)


def _matrix(table: pl.DataFrame, columns: list[str], fill: np.ndarray | None) -> np.ndarray:
    """Signals as floats, log-scaled (they are counts, shares and durations, all >= 0); nulls get `fill`."""
    x = np.log1p(np.clip(table.select(pl.col(columns).cast(pl.Float64)).to_numpy(), 0, None))
    if fill is None:
        return x
    return np.where(np.isnan(x), fill, x)


def _share_below(reference: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Share of the sorted `reference` scores below each score, ties counting one half: in [0, 1]."""
    below = np.searchsorted(reference, score, side="left") + np.searchsorted(reference, score, side="right")
    return below / (2 * len(reference))


class AnomalyDetector:
    """Unsupervised anomaly scores of per-user signal tables (higher is more anomalous).

    `fit(table)` learns what is usual from a table such as `behaviour_features` returns (no labels);
    `score(table)` scores the same or new users against it; `tail_probabilities(table)` gives, per
    signal of `signals`, the share of fitted users at least as extreme (1 where a user lacks it).
    """

    def __init__(self, method: str = "default", *, signals: dict[str, Signal] | None = None, seed: int = 0) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown anomaly method {method!r}: use one of {', '.join(METHODS)}")
        self.method = method
        self.signals = signals
        self.seed = seed

    def fit(self, table: pl.DataFrame) -> AnomalyDetector:
        signals = SIGNALS if self.signals is None else self.signals
        self.signals_ = {name: s for name, s in signals.items() if name in table.columns}
        if not self.signals_:
            raise DataError("the table has none of the anomaly signal columns", expected=", ".join(signals))
        # Each signal's observed values, sorted and turned so that larger is always more suspicious.
        self.reference_ = {name: np.sort(v[~np.isnan(v)]) for name in self.signals_ for v in [self._suspicious(table, name)]}
        self.n_fitted_ = table.height
        # Generic detectors get every numeric column that varies (a constant one says nothing, and PyOD warns).
        self.columns_ = [c for c, dtype in table.schema.items() if dtype.is_numeric() and table[c].drop_nulls().n_unique() > 1]
        generic = GENERIC if self.method == "default" else () if self.method == "tail" else (self.method,)
        if generic and not self.columns_:
            raise DataError(f"no signal varies across the {table.height} users: nothing for {', '.join(generic)} to learn")
        self.fill_ = np.nanmedian(_matrix(table, self.columns_, None), axis=0) if generic else None
        x = _matrix(table, self.columns_, self.fill_) if generic else None
        self.detectors_ = {name: GenericDetector(name, self.seed).fit(x) for name in generic}
        # "default" averages where each detector places a user among the fitted users, so that one
        # user scored alone gets the same score as in a batch.
        self.fitted_scores_ = {name: np.sort(v) for name, v in self._components(table).items()}
        return self

    def _suspicious(self, table: pl.DataFrame, name: str) -> np.ndarray:
        values = table[name].cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
        return values if self.signals_[name].direction == "high" else -values

    def tail_probabilities(self, table: pl.DataFrame) -> dict[str, np.ndarray]:
        """Per signal: (fitted users at least as extreme + 1) / (fitted users + 1); 1 where the value is missing."""
        self._check_fitted()
        out = {}
        for name, reference in self.reference_.items():
            values = self._suspicious(table, name)
            at_least = len(reference) - np.searchsorted(reference, np.nan_to_num(values, nan=np.inf), side="left")
            p = (at_least + 1) / (self.n_fitted_ + 1)
            out[name] = np.where(np.isnan(values), 1.0, p)
        return out

    def _components(self, table: pl.DataFrame) -> dict[str, np.ndarray]:
        scores = {"tail": sum(-np.log(p) for p in self.tail_probabilities(table).values())}
        if self.detectors_:
            x = _matrix(table, self.columns_, self.fill_)
            scores |= {name: detector.score(x) for name, detector in self.detectors_.items()}
        return scores

    def score(self, table: pl.DataFrame) -> np.ndarray:
        """Anomaly score of every row of `table` (higher is more anomalous; "default" is in [0, 1])."""
        self._check_fitted()
        components = self._components(table)
        if self.method != "default":
            return components[self.method]
        weights = {name: 2.0 if name == "tail" else 1.0 for name in components}
        placed = sum(weights[name] * _share_below(self.fitted_scores_[name], s) for name, s in components.items())
        return placed / sum(weights.values())

    def _check_fitted(self) -> None:
        if not hasattr(self, "reference_"):
            raise NotFittedError("AnomalyDetector.score needs fit(table) first")


def reasons_for(table: pl.DataFrame, probabilities: dict[str, np.ndarray], signals: dict[str, Signal],
                rows: np.ndarray, share: float = REASON_SHARE) -> list[list[str]]:
    """Sentences for `rows` of `table`: their signals with tail probability <= `share`, most extreme first."""
    out = []
    for i in rows:
        extreme = [name for _, name in sorted((p[i], name) for name, p in probabilities.items() if p[i] <= share)]
        record, said, sentences = table.row(int(i), named=True), set(), []
        for name in extreme:
            # A signal another extreme one already puts into words is said by that one, in this place.
            speaker = next((other for other in extreme if name in signals[other].covers), name)
            if speaker not in said:
                said.update((speaker, *signals[speaker].covers))
                sentences.append(signals[speaker].reason(record))
        out.append(sentences[:_MAX_REASONS] or [_NO_SINGLE_REASON])
    return out


def user_signals(events: EventLog | pl.DataFrame, *, accounts: pl.DataFrame | None = None,
                 behaviour: BehaviourModel | None = None,
                 shared: tuple[str, ...] = SHARED_COLUMNS) -> tuple[pl.DataFrame, dict[str, Signal]]:
    """Every user's signals (one row per user) and the `Signal` of each, as `score_users` builds them."""
    signals = dict(SIGNALS)
    signup = accounts.select("user_id", "signup_time") if accounts is not None and "signup_time" in accounts.columns else None
    table = behaviour_features(events, signup=signup)
    if accounts is not None:
        per_account, account_signals = account_features(accounts, shared)
        table = table.join(per_account, on="user_id", how="left", maintain_order="left")
        signals |= account_signals
    if behaviour is not None:
        table = table.join(sequence_surprisal(behaviour, events), on="user_id", how="left", maintain_order="left")
        signals["surprisal"] = surprisal_signal()
    return table, signals


def _flags(score: np.ndarray, flag_share: float, threshold: float | None) -> np.ndarray:
    if threshold is not None:
        return score >= threshold
    k = math.ceil(flag_share * len(score))
    flagged = np.zeros(len(score), dtype=bool)
    flagged[np.argsort(-score, kind="stable")[:k]] = True
    return flagged


def score_users(
    events: EventLog | pl.DataFrame,
    *,
    accounts: pl.DataFrame | None = None,
    behaviour: BehaviourModel | None = None,
    method: str = "default",
    flag_share: float = 0.01,
    threshold: float | None = None,
    shared: tuple[str, ...] = SHARED_COLUMNS,
    seed: int = 0,
) -> pl.DataFrame:
    """Bot and fraud scores of every user of an event log: `user_id, anomaly_score, flagged, reasons`.

    `events` has the event contract's columns (`user_id, item_id, timestamp` in unix seconds,
    `event_type`; `session_id`, `value` and `quantity` are used when present). `accounts`
    (`user_id` + any of `signup_time` in unix seconds and the `shared` columns such as device_id,
    ip_address) adds account signals; `behaviour`, a fitted behaviour model, adds the surprisal of
    each user's items. Users are scored against each other (no labels). The top `flag_share` of
    users are flagged, or, with `threshold`, those scoring at least it. `reasons` lists, for flagged
    users, up to three sentences such as "2223 views 2 s apart, never bought"; it is empty for others.
    """
    if not 0 < flag_share <= 1:
        raise ConfigError(f"flag_share must be in (0, 1], got {flag_share}")
    table, signals = user_signals(events, accounts=accounts, behaviour=behaviour, shared=shared)
    if table.is_empty():
        raise DataError("the events have no users to score")
    detector = AnomalyDetector(method, signals=signals, seed=seed).fit(table)
    score = detector.score(table)
    flagged = _flags(score, flag_share, threshold)
    reasons = [[] for _ in range(table.height)]
    rows = np.flatnonzero(flagged)
    # A signal explains a flag when at most as many users as are flagged are as extreme in it.
    share = max(REASON_SHARE, len(rows) / table.height)
    for i, sentences in zip(rows, reasons_for(table, detector.tail_probabilities(table), signals, rows, share)):
        reasons[i] = sentences
    return pl.DataFrame({
        "user_id": table["user_id"], "anomaly_score": score.astype(np.float64), "flagged": flagged,
        "reasons": pl.Series(reasons, dtype=pl.List(pl.String)),
    })
