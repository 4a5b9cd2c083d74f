"""The baselines every task model must beat: logistic regression and LightGBM on the hand-crafted features.

Both are tuned on the validation examples (a small grid, chosen by validation AUC) and handle
class imbalance by trying class-balanced weights as one grid option; the benchmark calibrates
their probabilities afterwards like any other model's. Saved as JSON (logistic) or LightGBM's own
text model format plus JSON: nothing is pickled.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from shopformer.artifacts import read_header, write_header
from shopformer.errors import DataError, ShopformerError
from shopformer.evaluate.binary import roc_auc
from shopformer.tasks.base import TaskContext, TaskExamples, example_features

__all__ = ["LightGBMModel", "LogisticModel", "model_meta", "read_model_json"]


def model_meta(directory: str | Path) -> dict:
    """The `model.json` of a saved task model folder; a clear error when there is none."""
    return read_header(Path(directory) / "model.json", "task_model", what="saved task model")


def _check_fitted(model, attribute: str) -> None:
    if not hasattr(model, attribute):
        raise ShopformerError(f"{model.name} is not fitted yet: call fit(train, valid, context) or load it")


def read_model_json(directory: str | Path, kind: str) -> dict:
    """The `model.json` of a saved task model, checked to be of `kind`."""
    meta = model_meta(directory)
    if meta.get("kind") != kind:
        raise DataError(f"task model folder holds a {meta.get('kind')!r} model", path=str(Path(directory) / "model.json"),
                        expected=kind)
    return meta


def _write_model_json(directory: str | Path, meta: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_header(directory / "model.json", "task_model", **meta)
    return directory


def _class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-example weights that give every class the same total weight."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    return (len(labels) / (n_classes * np.maximum(counts, 1)))[labels]


class _FeatureModel:
    """Shared plumbing: features from `example_features`, the task's classes, the grid search."""

    name = ""

    def _check(self, train: TaskExamples, valid: TaskExamples) -> None:
        for split, examples in (("train", train), ("valid", valid)):
            if len(examples) == 0 or len(np.unique(examples.labels)) < 2:
                raise DataError(f"the {split} examples of task {train.task!r} need both classes to fit {self.name}",
                                found=f"{len(examples)} examples")
        self.classes_ = train.classes

    def _proba(self, raw: np.ndarray) -> np.ndarray:
        return raw[:, 1] if len(self.classes_) == 2 else raw


_LOGISTIC_ARRAYS = ("mean", "scale", "coef", "intercept")


class LogisticModel(_FeatureModel):
    """L2 logistic regression on log-scaled, standardised features; C and class weights tuned on validation."""

    name = "logistic"
    GRID = {"C": (0.01, 0.1, 1.0), "balanced": (False, True)}

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> LogisticModel:
        self._check(train, valid)
        x_train = example_features(context, train)
        self.features_ = x_train.names
        z = _log_scale(x_train.values)
        self.mean_, self.scale_ = z.mean(axis=0), z.std(axis=0) + 1e-6
        z_train = (z - self.mean_) / self.scale_
        z_valid = self._scaled(example_features(context, valid).values)
        best = None
        for c, balanced in itertools.product(*self.GRID.values()):
            fit = LogisticRegression(C=c, max_iter=300, tol=1e-3, class_weight="balanced" if balanced else None)
            # One BLAS thread: these small solves slow down 100-fold when BLAS threads contend for cores.
            with threadpool_limits(limits=1):
                fit.fit(z_train, train.labels)
            score = roc_auc(valid.labels, self._proba(fit.predict_proba(z_valid)))
            if best is None or score > best[0]:
                best = (score, fit, {"C": c, "balanced": balanced})
        _, fit, self.params_ = best
        self.coef_, self.intercept_ = _all_classes(fit, len(self.classes_))
        return self

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        return (_log_scale(values) - self.mean_) / self.scale_

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        _check_fitted(self, "coef_")
        logits = self._scaled(example_features(context, examples).values) @ self.coef_.T + self.intercept_
        if len(self.classes_) == 2:
            return 1 / (1 + np.exp(-logits[:, 0]))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, directory: str | Path) -> Path:
        return _write_model_json(directory, {
            "kind": "logistic", "classes": list(self.classes_), "features": list(self.features_), "params": self.params_,
            **{name: getattr(self, f"{name}_").tolist() for name in _LOGISTIC_ARRAYS},
            # Reloaded in the dtypes they were fitted in, so the scores stay bit-identical.
            "dtypes": {name: str(getattr(self, f"{name}_").dtype) for name in _LOGISTIC_ARRAYS},
        })

    @classmethod
    def load(cls, directory: str | Path) -> LogisticModel:
        meta = read_model_json(directory, "logistic")
        model = cls()
        model.classes_, model.features_, model.params_ = tuple(meta["classes"]), tuple(meta["features"]), meta["params"]
        dtypes = meta.get("dtypes", {})
        for name in _LOGISTIC_ARRAYS:
            setattr(model, f"{name}_", np.array(meta[name], dtype=dtypes.get(name, "float64")))
        return model


def _all_classes(fit: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients with a row per task class: a class absent from training gets ~zero probability."""
    if n_classes == 2:
        return fit.coef_, fit.intercept_
    coef, intercept = np.zeros((n_classes, fit.coef_.shape[1])), np.full(n_classes, -30.0)
    coef[fit.classes_], intercept[fit.classes_] = fit.coef_, fit.intercept_
    return coef, intercept


def _log_scale(values: np.ndarray) -> np.ndarray:
    """Signed log1p: counts and durations are heavy-tailed; a linear model wants them compressed."""
    return np.sign(values) * np.log1p(np.abs(values))


class LightGBMModel(_FeatureModel):
    """Gradient-boosted trees; leaves, class weights tuned and rounds early-stopped on validation."""

    name = "lightgbm"
    GRID = {"num_leaves": (7, 15, 31), "balanced": (False, True)}
    BASE_PARAMS = {"learning_rate": 0.05, "min_data_in_leaf": 40, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                   "bagging_freq": 1, "lambda_l2": 1.0, "verbosity": -1, "seed": 0, "deterministic": True}
    MAX_ROUNDS, PATIENCE = 1000, 50

    def __init__(self, num_threads: int = 1) -> None:
        # One thread by default: these fits are small, and extra threads contend with torch's.
        self.num_threads = num_threads

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> LightGBMModel:
        self._check(train, valid)
        x_train, x_valid = example_features(context, train), example_features(context, valid)
        self.features_ = x_train.names
        self.booster_, self.params_ = tuned_booster(x_train.values, train.labels, x_valid.values, valid.labels,
                                                    len(self.classes_), self.num_threads)
        return self

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        _check_fitted(self, "booster_")
        values = example_features(context, examples).values
        return self.booster_.predict(values, num_iteration=self.params_["rounds"])

    def save(self, directory: str | Path) -> Path:
        directory = _write_model_json(directory, {"kind": "lightgbm", "classes": list(self.classes_),
                                                  "features": list(self.features_), "params": self.params_})
        self.booster_.save_model(str(directory / "lightgbm.txt"), num_iteration=self.params_["rounds"])
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> LightGBMModel:
        meta = read_model_json(directory, "lightgbm")
        model = cls()
        model.classes_, model.features_, model.params_ = tuple(meta["classes"]), tuple(meta["features"]), meta["params"]
        model.booster_ = lgb.Booster(model_file=str(Path(directory) / "lightgbm.txt"))
        return model


def tuned_booster(x_train, y_train, x_valid, y_valid, n_classes: int, num_threads: int) -> tuple[lgb.Booster, dict]:
    """The booster of `LightGBMModel.GRID` (leaves x class weighting) with the best validation AUC,
    its rounds early-stopped on validation, and the parameters that picked it."""
    objective = ({"objective": "binary", "metric": "auc"} if n_classes == 2
                 else {"objective": "multiclass", "num_class": n_classes, "metric": "multi_logloss"})
    best = None
    for leaves, balanced in itertools.product(*LightGBMModel.GRID.values()):
        weights = _class_weights(y_train, n_classes) if balanced else None
        data = lgb.Dataset(x_train, y_train, weight=weights, free_raw_data=False)
        held = lgb.Dataset(x_valid, y_valid, reference=data)
        params = LightGBMModel.BASE_PARAMS | objective | {"num_leaves": leaves, "num_threads": num_threads}
        booster = lgb.train(params, data, LightGBMModel.MAX_ROUNDS, valid_sets=[held],
                            callbacks=[lgb.early_stopping(LightGBMModel.PATIENCE, verbose=False)])
        score = roc_auc(y_valid, booster.predict(x_valid, num_iteration=booster.best_iteration))
        if best is None or score > best[0]:
            best = (score, booster, {"num_leaves": leaves, "balanced": balanced, "rounds": booster.best_iteration})
    return best[1], best[2]
