"""Calibration of predicted probabilities on validation predictions and labels.

Binary tasks: Platt scaling (a logistic fit on the logit of the model's probability; it keeps the
ranking) or isotonic regression (monotone steps), chosen by 5-fold cross-validated log-loss on the
validation set (isotonic only when clearly better), then refitted on all of it. Next-event-type: temperature scaling of
the log-probabilities. A fitted calibrator is a few numbers in JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from shopformer.artifacts import read_header, write_header
from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import logloss

__all__ = ["Calibrator", "METHODS", "fit_calibrator", "load_calibrator"]

METHODS = ("auto", "platt", "isotonic", "temperature", "none")
_EPS = 1e-6
#: Log-loss (nats) by which isotonic regression must beat Platt scaling to be chosen.
ISOTONIC_MARGIN = 0.002


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class Calibrator:
    """Maps a model's probabilities to calibrated ones; `fit` on validation predictions and labels."""

    def __init__(self, method: str = "auto") -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
        self.method = method
        self.params_: dict = {}

    def fit(self, probs: np.ndarray, labels: np.ndarray) -> Calibrator:
        probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
        method = self.method
        if method == "auto":
            method = "temperature" if probs.ndim == 2 else self._choose(probs, labels)
        if probs.ndim == 2 and method not in ("temperature", "none"):
            raise ConfigError(f"calibration {method!r} is for binary tasks; multi-class tasks use temperature")
        self.method_, self.params_ = method, _FITTERS[method](probs, labels)
        return self

    @property
    def chosen_method(self) -> str:
        """The method `fit` used ("auto" resolved to the one it chose)."""
        return self.method_

    def transform(self, probs: np.ndarray) -> np.ndarray:
        return _APPLIERS[self.method_](np.asarray(probs, dtype=float), self.params_)

    @staticmethod
    def _choose(probs: np.ndarray, labels: np.ndarray) -> str:
        """Platt or isotonic, whichever has the lower 5-fold cross-validated log-loss."""
        if labels.min() == labels.max():
            return "none"
        folds = np.random.default_rng(0).permutation(len(labels)) % 5
        losses = {}
        for method in ("platt", "isotonic"):
            out = np.empty(len(labels))
            for k in range(5):
                fit_on = folds != k
                params = _FITTERS[method](probs[fit_on], labels[fit_on])
                out[~fit_on] = _APPLIERS[method](probs[~fit_on], params)
            losses[method] = logloss(labels, out)
        # Isotonic steps tie many examples (coarser ranking, flat top lists): it has to earn that.
        return "isotonic" if losses["isotonic"] < losses["platt"] - ISOTONIC_MARGIN else "platt"

    def to_dict(self) -> dict:
        return {"method": self.method_, "params": self.params_}

    @classmethod
    def from_dict(cls, values: dict) -> Calibrator:
        calibrator = cls(values["method"])
        calibrator.method_, calibrator.params_ = values["method"], values["params"]
        return calibrator

    def save(self, directory: str | Path) -> Path:
        """Writes `directory/calibration.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_header(directory / "calibration.json", "calibration", **self.to_dict())
        return directory


def fit_calibrator(probs: np.ndarray, labels: np.ndarray, n_classes: int = 2, method: str = "auto") -> Calibrator:
    """A calibrator fitted on validation predictions (`n_classes` > 2: probs has one column per class)."""
    probs = np.asarray(probs, dtype=float)
    if (probs.ndim == 2) != (n_classes > 2):
        raise DataError(f"predictions of shape {probs.shape} do not fit a {n_classes}-class task")
    return Calibrator(method).fit(probs, labels)


def load_calibrator(directory: str | Path) -> Calibrator:
    """The calibrator `Calibrator.save` wrote into `directory`."""
    return Calibrator.from_dict(read_header(Path(directory) / "calibration.json", "calibration", what="calibration"))


def _fit_platt(probs, labels) -> dict:
    if labels.min() == labels.max():
        return {"a": 0.0, "b": float(_logit(np.array([labels.mean()]))[0])}
    fit = LogisticRegression(C=1e4).fit(_logit(probs)[:, None], labels)
    return {"a": float(fit.coef_[0, 0]), "b": float(fit.intercept_[0])}


def _fit_isotonic(probs, labels) -> dict:
    fit = IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip").fit(probs, labels)
    return {"x": fit.X_thresholds_.tolist(), "y": fit.y_thresholds_.tolist()}


def _fit_temperature(probs, labels) -> dict:
    logp = np.log(np.clip(probs, _EPS, 1))

    def loss(temperature: float) -> float:
        return logloss(labels, _softmax(logp / temperature))

    return {"temperature": float(minimize_scalar(loss, bounds=(0.05, 20.0), method="bounded").x)}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_FITTERS = {"platt": _fit_platt, "isotonic": _fit_isotonic, "temperature": _fit_temperature, "none": lambda p, y: {}}
_APPLIERS = {
    "platt": lambda p, q: 1 / (1 + np.exp(-(q["a"] * _logit(p) + q["b"]))),
    "isotonic": lambda p, q: np.interp(p, q["x"], q["y"]),
    "temperature": lambda p, q: _softmax(np.log(np.clip(p, _EPS, 1)) / q["temperature"]),
    "none": lambda p, q: p,
}
