"""`shopformer-hybrid`: gradient boosting on the hand-crafted features plus what the Transformer reads.

The behaviour Transformer contributes two kinds of columns to the framework's RFM/funnel features:

* the score of a frozen-encoder task head (`TransformerTaskModel`), *cross-fitted* on the training
  examples (each fold scored by a head that never saw it, folds grouped by user), so the booster
  learns how far to trust the score from scores as noisy as the ones it will get on new examples;
* the leading principal components of the pooled user state, fitted on the training examples.

Both are missing (NaN, which LightGBM routes by itself) for training and validation examples whose
future the behaviour model was pre-trained on (`learnable_rows`): their states leak the label.

LightGBM (the baseline's parameters and grid) is then tuned and early-stopped on validation.
Saved as LightGBM's text model, an npz of the projection and the head's own folder; no pickle.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np

from shopformer.artifacts import write_header
from shopformer.errors import ShopformerError
from shopformer.models.base import BehaviourModel
from shopformer.runtime import torch_threads
from shopformer.tasks.base import TaskContext, TaskExamples, example_features
from shopformer.tasks.baselines import read_model_json, tuned_booster
from shopformer.tasks.shared import SharedBehaviour
from shopformer.tasks.transformer_inputs import (
    TaskInputs,
    example_rows,
    learnable_rows,
    task_inputs,
    unseen_future,
)
from shopformer.tasks.transformer_models import (
    TransformerTaskModel,
    frozen_states,
    load_transformer_model,
    pretrained_behaviour_model,
)

__all__ = ["HybridTaskModel", "hybrid_factory", "load_hybrid_model"]

_KIND = "shopformer-hybrid"
_EPS = 1e-6


class HybridTaskModel:
    """LightGBM on hand-crafted features + cross-fitted Transformer head scores + state components.

    Args:
        behaviour: the fitted behaviour model.
        name: the model's name in results (`shopformer` when it is the default).
        components: principal components of the pooled user state given to the booster.
        folds: cross-fitting folds of the head scores on the training examples.
        save_behaviour: `save` writes the behaviour model too (pre-trained here, in no bundle).
    """

    def __init__(self, behaviour: BehaviourModel, *, name: str = _KIND, components: int = 8, folds: int = 3,
                 save_behaviour: bool = False, num_threads: int = 1) -> None:
        self.name, self.behaviour, self.components, self.folds = name, behaviour, components, folds
        self.save_behaviour, self.num_threads = save_behaviour, num_threads

    def _head(self) -> TransformerTaskModel:
        return TransformerTaskModel(f"{self.name}-head", self.behaviour, finetune=False, save_behaviour=self.save_behaviour)

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> HybridTaskModel:
        """Cross-fits the head scores, projects the states, tunes the booster on `valid`."""
        if not len(train) or not len(valid):
            raise ShopformerError(f"{self.name}: {train.task} needs training and validation examples")
        self.classes_ = train.classes
        clean = learnable_rows(self.behaviour, train), learnable_rows(self.behaviour, valid)
        # Masked at prediction too, unless every example was learned from (a bundle that saw them all).
        self.mask_seen_ = not (clean[0].all() and clean[1].all())
        inputs = task_inputs(self.behaviour, train, context), task_inputs(self.behaviour, valid, context)
        # The frozen states of every example, once: the heads' row subsets below and the booster share them.
        with torch_threads(self.behaviour.num_threads):
            for part in inputs:
                frozen_states(self.behaviour.transformer, part)
        head_train, head_valid = example_rows(train, clean[0]), example_rows(valid, clean[1])
        train_in, valid_in = inputs[0].rows(np.flatnonzero(clean[0])), inputs[1].rows(np.flatnonzero(clean[1]))
        self.head_ = self._head().fit_inputs(train.task, train.classes, train_in, head_train.labels, valid_in,
                                             head_valid.labels)
        scores = self._cross_fitted_scores(head_train, train_in, valid_in, head_valid.labels)
        states = train_in.frozen_states.numpy()
        self.state_mean_ = states.mean(0)
        # Principal axes of the centred states (rows of vt), the strongest first.
        _, _, vt = np.linalg.svd(states - self.state_mean_, full_matrices=False)
        self.state_axes_ = vt[: self.components].astype(np.float32)
        x_train = self._matrix(context, train, inputs[0], clean[0], _spread(scores, clean[0]))
        x_valid = self._matrix(context, valid, inputs[1], clean[1], self.head_.raw_proba(inputs[1]))
        self.booster_, self.params_ = tuned_booster(x_train, train.labels, x_valid, valid.labels, len(self.classes_),
                                                     self.num_threads)
        return self

    def _cross_fitted_scores(self, train: TaskExamples, inputs: TaskInputs, valid: TaskInputs, valid_labels: np.ndarray):
        """Head scores of every training example from a head fitted on the other folds (users apart)."""
        users = train.frame["user_id"]
        fold = (users.hash(seed=0) % self.folds).to_numpy().astype(np.int64)
        scores = self.head_.raw_proba(inputs)  # only rows of a fold without the other folds keep these
        for k in range(self.folds):
            held, rest = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
            if not len(held) or len(np.unique(train.labels[rest])) < 2:
                continue
            head = self._head().fit_inputs(train.task, train.classes, inputs.rows(rest), train.labels[rest], valid,
                                           valid_labels)
            scores[held] = head.raw_proba(inputs.rows(held))
        return scores

    def _matrix(self, context: TaskContext, examples: TaskExamples, inputs: TaskInputs, clean: np.ndarray,
                scores: np.ndarray) -> np.ndarray:
        """Hand-crafted features | head score (logit, or log-probabilities per class) | state components;
        the Transformer's columns NaN where `clean` is False."""
        features = example_features(context, examples).values
        p = np.clip(scores, _EPS, 1 - _EPS)
        score_columns = np.log(p / (1 - p))[:, None] if p.ndim == 1 else np.log(p)
        projected = (frozen_states(self.head_.network_.encoder, inputs).numpy() - self.state_mean_) @ self.state_axes_.T
        learned = np.hstack([score_columns, projected])
        learned[~clean] = np.nan
        return np.hstack([features, learned]).astype(np.float64)

    @property
    def head(self) -> TransformerTaskModel:
        """The frozen-encoder Transformer head whose cross-fitted score the booster reads."""
        return self.head_

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        """P(label = 1) `(n,)`, or `(n, n_classes)` for multi-class tasks (not calibrated)."""
        if not hasattr(self, "booster_"):
            raise ShopformerError(f"{self.name} is not fitted yet: call fit(train, valid, context)")
        inputs = task_inputs(self.behaviour, examples, context)
        clean = unseen_future(self.behaviour, examples) if self.mask_seen_ else np.ones(len(examples), dtype=bool)
        matrix = self._matrix(context, examples, inputs, clean, self.head_.raw_proba(inputs))
        return self.booster_.predict(matrix, num_iteration=self.params_["rounds"])

    def save(self, directory: str | Path) -> Path:
        """`model.json`, `lightgbm.txt`, `states.npz` and the head's folder `head/`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.head_.save(directory / "head")
        self.booster_.save_model(str(directory / "lightgbm.txt"), num_iteration=self.params_["rounds"])
        np.savez(directory / "states.npz", mean=self.state_mean_, axes=self.state_axes_)
        meta = {"kind": _KIND, "name": self.name, "mask_seen": self.mask_seen_, "classes": list(self.classes_),
                "params": self.params_, "components": self.components, "folds": self.folds}
        write_header(directory / "model.json", "task_model", **meta)
        return directory


def _spread(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Scores of the kept rows placed back among all rows (the others: NaN, masked later anyway)."""
    full = np.full((len(keep), *scores.shape[1:]), np.nan)
    full[keep] = scores
    return full


def load_hybrid_model(directory: str | Path, shared: SharedBehaviour) -> HybridTaskModel:
    """A saved `HybridTaskModel` (its head on the behaviour model saved beside it or the bundle's)."""
    directory = Path(directory)
    meta = read_model_json(directory, _KIND)
    head = load_transformer_model(directory / "head", shared)
    model = HybridTaskModel(head.behaviour, name=meta["name"], components=meta["components"], folds=meta["folds"])
    model.classes_, model.params_, model.head_ = tuple(meta["classes"]), meta["params"], head
    model.mask_seen_ = meta["mask_seen"]
    with np.load(directory / "states.npz", allow_pickle=False) as arrays:
        model.state_mean_, model.state_axes_ = arrays["mean"], arrays["axes"]
    model.booster_ = lgb.Booster(model_file=str(directory / "lightgbm.txt"))
    return model


def hybrid_factory(name: str):
    """A `MODEL_FACTORIES` entry: the hybrid named `name`, on the dataset's shared behaviour model."""

    def make(context: TaskContext, shared: SharedBehaviour) -> HybridTaskModel:
        return HybridTaskModel(pretrained_behaviour_model(context, shared), name=name, save_behaviour=shared.pretrained)

    return make
