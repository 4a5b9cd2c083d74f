"""Any task model, calibrated on the validation examples it is fitted with (`evaluate.calibration`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopformer.evaluate.calibration import Calibrator, load_calibrator
from shopformer.tasks.base import TaskContext, TaskExamples, TaskModel

__all__ = ["CalibratedModel"]


class CalibratedModel:
    """A task model whose probabilities are calibrated on the validation examples it was fitted with."""

    def __init__(self, model: TaskModel, method: str = "auto") -> None:
        self.model, self.calibrator = model, Calibrator(method)
        self.name = model.name

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> CalibratedModel:
        self.model.fit(train, valid, context)
        #: The wrapped model's own probabilities of `valid`: what the calibrator was fitted on.
        self.valid_proba_ = self.model.predict_proba(valid, context)
        self.calibrator.fit(self.valid_proba_, valid.labels)
        return self

    @property
    def valid_proba(self) -> np.ndarray:
        """The wrapped model's uncalibrated probabilities of the validation examples it was fitted with."""
        return self.valid_proba_

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        return self.calibrator.transform(self.model.predict_proba(examples, context))

    def predict_uncalibrated(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        return self.model.predict_proba(examples, context)

    def save(self, directory: str | Path) -> Path:
        """The wrapped model in `directory/model/`, the calibrator in `directory/calibration.json`."""
        directory = Path(directory)
        self.model.save(directory / "model")
        return self.calibrator.save(directory)

    @classmethod
    def load(cls, directory: str | Path, model: TaskModel) -> CalibratedModel:
        """Rebuilds the wrapper around `model` (already loaded from `directory/model/`)."""
        loaded = cls(model)
        loaded.calibrator = load_calibrator(directory)
        return loaded
