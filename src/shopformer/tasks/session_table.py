"""Purchase models on a one-row-per-session table (`data.session_table`): split, encoding, models.

The table has no event sequences, so the behaviour Transformer and the event-log features do not
apply; what carries over is the task models' machinery: the tuned LightGBM booster of the task
baselines (`tuned_booster`: leaves and class weighting chosen, rounds early-stopped on validation)
and the calibration on validation (`evaluate.calibration`), next to a small multilayer perceptron,
the model of Sakar et al. (2019) on the Online Shoppers table.

The split is stratified and random (70/10/20 by default, seeded): such a table has no time finer
than its month column, and months differ in base rate more than anything a model learns (November
a quarter of sessions buying, February 2%), so an out-of-month split would measure the season.
Every fitted step (category levels, imputation, scaling, model, calibration) sees training or
validation rows only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from shopformer.data.session_table import SessionTable
from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import roc_auc
from shopformer.tasks.baselines import tuned_booster

__all__ = ["SESSION_MODELS", "SPLIT_FRACTIONS", "BoosterModel", "MLPModel", "SessionModel", "SessionSplit", "TableEncoder",
           "make_session_model", "stratified_split"]

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class SessionSplit:
    """Row indices of the train, valid and test parts (sorted), and the seed that drew them."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    seed: int

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


def stratified_split(labels: np.ndarray, seed: int = 0, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> SessionSplit:
    """A random split with each class divided in `fractions` (train, valid, test)."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"split fractions must be three positive shares summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for value in (0, 1):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.round(np.cumsum(fractions)[:2] * len(rows)).astype(int)
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    train, valid, test = (np.sort(np.concatenate(part)) for part in parts)
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        if len(np.unique(labels[rows])) < 2:
            raise DataError(f"the {name} part has only one class: the table has too few rows of the rarer label",
                            expected="at least a few rows of each label", found=f"{int(labels.sum())} positive rows")
    return SessionSplit(train, valid, test, seed)


class TableEncoder:
    """Numeric columns as they are (empty cells NaN); categorical ones one-hot over the levels seen at
    least `min_count` times in the training rows, rarer and unseen levels sharing an `other` column."""

    def __init__(self, min_count: int = 10) -> None:
        self.min_count = min_count

    def fit(self, table: SessionTable) -> TableEncoder:
        counts = {c: table.features[c].fill_null("(empty)").value_counts(sort=True) for c in table.categorical}
        self.levels_ = {c: [v for v, n in counts[c].iter_rows() if n >= self.min_count] for c in table.categorical}
        self.numeric_ = table.numeric
        self.names_ = [*table.numeric, *(f"{c}={v}" for c in table.categorical for v in [*self.levels_[c], "other"])]
        return self

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded columns, in `transform`'s order."""
        return self.names_

    def transform(self, table: SessionTable) -> np.ndarray:
        """The encoded (rows, features) matrix of `table`, float64."""
        blocks = [table.features.select(self.numeric_).to_numpy().astype(float)]
        for column, levels in self.levels_.items():
            values = table.features[column].fill_null("(empty)").to_numpy()
            onehot = [values == level for level in levels] + [~np.isin(values, levels)]
            blocks.append(np.column_stack(onehot).astype(float))
        return np.hstack(blocks)


class SessionModel(Protocol):
    """A binary model of encoded session rows: P(label = 1), shape `(n,)`."""

    name: str

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> SessionModel: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


class BoosterModel:
    """The task baselines' tuned LightGBM booster (grid and early stopping on validation)."""

    name = "lightgbm"

    def __init__(self, num_threads: int = 1) -> None:
        self.num_threads = num_threads

    def fit(self, x_train, y_train, x_valid, y_valid) -> BoosterModel:
        self.booster_, self.params_ = tuned_booster(x_train, y_train, x_valid, y_valid, 2, self.num_threads)
        return self

    @property
    def params(self) -> dict:
        """The grid point validation chose, with its early-stopped rounds."""
        return self.params_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(x, num_iteration=self.params_["rounds"])


class MLPModel:
    """A small multilayer perceptron (scikit-learn, Adam, early stopping on 10% of the training rows) on
    median-imputed, signed-log, standardised features; width and L2 penalty chosen by validation AUC."""

    name = "mlp"
    GRID = {"hidden": ((32,), (64, 32)), "alpha": (1e-4, 1e-2)}

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, x_train, y_train, x_valid, y_valid) -> MLPModel:
        self.median_ = np.nan_to_num(np.nanmedian(x_train, axis=0))
        z = _signed_log(np.where(np.isnan(x_train), self.median_, x_train))
        self.mean_, self.scale_ = z.mean(axis=0), z.std(axis=0) + 1e-6
        z_train, z_valid = (z - self.mean_) / self.scale_, self._scaled(x_valid)
        best = None
        for hidden, alpha in itertools.product(*self.GRID.values()):
            net = MLPClassifier(hidden_layer_sizes=hidden, alpha=alpha, early_stopping=True, max_iter=300,
                                random_state=self.seed)
            # One BLAS thread: small matrix products slow down when threads contend for the cores.
            with threadpool_limits(limits=1):
                net.fit(z_train, y_train)
            score = roc_auc(y_valid, net.predict_proba(z_valid)[:, 1])
            if best is None or score > best[0]:
                best = (score, net, {"hidden": list(hidden), "alpha": alpha})
        _, self.net_, self.params_ = best
        return self

    @property
    def params(self) -> dict:
        """The grid point validation chose."""
        return self.params_

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return (_signed_log(np.where(np.isnan(x), self.median_, x)) - self.mean_) / self.scale_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=1):
            return self.net_.predict_proba(self._scaled(x))[:, 1]


def _signed_log(values: np.ndarray) -> np.ndarray:
    """Signed log1p: page counts and durations are heavy-tailed; the network trains better compressed."""
    return np.sign(values) * np.log1p(np.abs(values))


SESSION_MODELS = {"lightgbm": BoosterModel, "mlp": MLPModel}


def make_session_model(name: str, seed: int = 0) -> SessionModel:
    """An unfitted session-table model by name; an unknown name is a `ConfigError` listing the known ones."""
    if name not in SESSION_MODELS:
        raise ConfigError(f"unknown session-table model {name!r}; choose from {', '.join(SESSION_MODELS)}")
    return MLPModel(seed) if name == "mlp" else BoosterModel()
