"""Task models on the pre-trained behaviour Transformer.

    shopformer-finetune   encoder + head trained end to end on the task labels (the encoder at a
                          tenth of the head's learning rate), early-stopped on validation
    shopformer-frozen     the pre-trained encoder untouched, only the head trained

Both read each example through `transformer_inputs` (its last `max_len` visible events in the
behaviour model's codes, and scalars the sequence cannot carry: time from the last event to the
cut-off, tenure, event counts, how the user met a candidate item), pool the encoder's hidden
states and score them with a `TaskHead`. Heads learn only from examples whose future the encoder
never saw (`learnable_rows`). Positives are up-weighted by the class ratio while training, so the
raw probabilities are not calibrated: the `CalibratedModel` wrapper every task model goes through
calibrates them on validation.

The behaviour model (a `models.base.BehaviourModel`) is the caller's bundle (`shared.model`), or
pre-trained once per dataset on `context.training_events()` (`pretrained_behaviour_model`) with the
`shared.fit` that `predict/` hands over. Saved models are JSON + safetensors. Loading needs the same
behaviour model: the bundle's own (`shared.bundle_dir`, `shared.model`), or, when it was pre-trained
here, the copy saved beside the task model.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from shopformer.artifacts import write_header
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Dataset, EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ShopformerError
from shopformer.evaluate.binary import roc_auc
from shopformer.models.base import BehaviourModel
from shopformer.models.heads import TaskHead, pool_states
from shopformer.models.inputs import gather_windows
from shopformer.runtime import torch_threads
from shopformer.tasks.base import TaskContext, TaskExamples
from shopformer.tasks.baselines import read_model_json
from shopformer.tasks.shared import SharedBehaviour
from shopformer.tasks.transformer_inputs import (
    TaskInputs,
    example_rows,
    learnable_rows,
    task_inputs,
)
from shopformer.train.heads import HeadTraining, fit_head

__all__ = ["FINETUNE", "PRETRAIN", "TransformerTaskModel", "bundle_behaviour_model", "frozen_states",
           "load_transformer_model", "pretrained_behaviour_model", "transformer_factory"]

logger = logging.getLogger(__name__)

#: Pre-training recipe when no behaviour model is given: a minute and a half on one thread.
PRETRAIN = {"max_minutes": 1.5, "num_threads": 1, "patience": 5, "progress": False}
_BATCH = 1024
#: Fine-tuning recipe: 40 seconds per task at most, on one thread, stopped early on validation AUC.
FINETUNE = HeadTraining(max_epochs=30, patience=3, max_seconds=40.0)


def pretrained_behaviour_model(context: TaskContext, shared: SharedBehaviour, train: dict | None = None,
                               model: dict | None = None) -> BehaviourModel:
    """The behaviour model every task of a dataset shares: `shared.model` if set, else one
    pre-trained by `shared.fit` on the label-free training events of half the users (kept in
    `shared`): the other half are users whose futures it never saw (see `unseen_future`).

    Catalog items never seen while pre-training get vectors from their side features (cold start),
    so candidates of later cut-offs are not all the same unknown item.
    """
    if shared.model is None:
        if shared.fit is None:
            raise ShopformerError("a Shopformer task model needs a behaviour model or a way to fit one")
        events = context.training_events().drop("position")
        events = events.filter(pl.col("user_id").hash(seed=0) % 2 == 0)
        dataset = Dataset("task-pretraining", EventLog(events, context.time_resolution), context.catalog)
        behaviour = shared.fit(prepare(dataset, PrepareConfig()), {**PRETRAIN, **(train or {})}, model)
        if context.catalog is not None:
            behaviour.add_items(context.catalog)
        shared.model, shared.pretrained = behaviour, True
    return shared.model


def _loader(shared: SharedBehaviour):
    if shared.load is None:
        raise ShopformerError("a Shopformer task model needs its behaviour model: load it from its bundle")
    return shared.load


def bundle_behaviour_model(shared: SharedBehaviour) -> BehaviourModel:
    """The behaviour model of the bundle task models are loaded from (read once, kept in `shared`)."""
    if shared.model is None:
        if shared.bundle_dir is None:
            raise ShopformerError("a Shopformer task model needs its behaviour model: load it from its bundle")
        shared.model = _loader(shared)(shared.bundle_dir)
    return shared.model


def load_transformer_model(directory: str | Path, shared: SharedBehaviour) -> TransformerTaskModel:
    """A saved `TransformerTaskModel`, on the behaviour model saved beside it or the bundle's."""
    own = Path(directory) / "behaviour"
    behaviour = _loader(shared)(own) if own.is_dir() else bundle_behaviour_model(shared)
    return TransformerTaskModel.load(directory, behaviour)


def _pooled_states(encoder: nn.Module, histories: SequenceArrays, rows: np.ndarray) -> Tensor:
    """Pooled states `(len(rows), 2 * dim)` of those rows of `histories`."""
    batch = gather_windows(histories, histories.offsets[:-1][rows], histories.offsets[1:][rows])
    hidden = encoder(batch.items, batch.event_types, batch.timestamps)
    return pool_states(hidden, batch.items != 0)


@torch.no_grad()
def _all_states(encoder: nn.Module, histories: SequenceArrays) -> Tensor:
    """Pooled states of every row of `histories`, a batch at a time, the encoder in eval mode."""
    encoder.eval()
    n = len(histories.lengths)
    parts = [_pooled_states(encoder, histories, np.arange(i, min(i + _BATCH, n))) for i in range(0, n, _BATCH)]
    return torch.cat(parts) if parts else torch.zeros((0, 2 * encoder.config.dim))


def frozen_states(encoder: nn.Module, inputs: TaskInputs) -> Tensor:
    """Pooled states of `inputs` under the untouched behaviour encoder: computed once, kept on `inputs`
    (and on every `inputs.rows(...)` taken afterwards)."""
    if inputs.frozen_states is None:
        inputs.frozen_states = _all_states(encoder, inputs.histories)
    return inputs.frozen_states


class _TaskNetwork(nn.Module):
    """Sequence encoder of the behaviour Transformer + a task head."""

    def __init__(self, encoder: nn.Module, head: TaskHead, frozen: bool) -> None:
        super().__init__()
        self.encoder, self.head, self.frozen = encoder, head, frozen

    def forward(self, inputs: TaskInputs, extras: Tensor, rows: np.ndarray, states: Tensor | None = None) -> Tensor:
        state = _pooled_states(self.encoder, inputs.histories, rows) if states is None else states[rows]
        candidate = codes = None
        if inputs.candidates is not None:
            codes = torch.from_numpy(inputs.candidates[rows])
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):  # no gradient into a shared encoder
                candidate = self.encoder.item_encoder(codes)
        return self.head(state, extras[rows], candidate, inputs.session_batch(rows), codes)


class TransformerTaskModel:
    """A task model on the behaviour Transformer, fine-tuned end to end or with a frozen encoder.

    Args:
        name: the model's name in results and bundles.
        behaviour: the fitted behaviour model the encoder comes from.
        finetune: train the encoder too (else only the head).
        training: optimisation of the head (and encoder).
        hidden: width of the head's hidden layer.
        state_dropout: dropout on the pooled state. Heavy by default: on Taobao the head otherwise
            fits the 2 * dim state of a few thousand examples and loses to its own scalar extras.
        save_behaviour: `save` writes the behaviour model too (it is in no bundle: pre-trained here).
    """

    def __init__(self, name: str, behaviour: BehaviourModel, *, finetune: bool, training: HeadTraining | None = None,
                 hidden: int = 16, state_dropout: float = 0.8, save_behaviour: bool = False) -> None:
        self.name, self.behaviour, self.finetune = name, behaviour, finetune
        self.training = training or HeadTraining()
        self.hidden, self.state_dropout, self.save_behaviour = hidden, state_dropout, save_behaviour

    # ----------------------------------------------------------------------------- fitting

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> TransformerTaskModel:
        """Trains on the `train` examples whose future the encoder never saw, early-stops on `valid`'s."""
        if not len(train) or not len(valid):
            raise ShopformerError(f"{self.name}: {train.task} needs training and validation examples")
        train = example_rows(train, learnable_rows(self.behaviour, train))
        valid = example_rows(valid, learnable_rows(self.behaviour, valid))
        inputs = task_inputs(self.behaviour, train, context), task_inputs(self.behaviour, valid, context)
        return self.fit_inputs(train.task, train.classes, inputs[0], train.labels, inputs[1], valid.labels)

    def fit_inputs(self, task: str, classes: tuple[str, ...], train: TaskInputs, labels: np.ndarray,
                   valid: TaskInputs, valid_labels: np.ndarray) -> TransformerTaskModel:
        """`fit` on inputs already encoded (the hybrid cross-fits heads on parts of them)."""
        self.task_, self.classes_ = task, classes
        self.extra_mean_ = train.extras.mean(0)
        self.extra_std_ = train.extras.std(0) + 1e-6
        torch.manual_seed(self.training.seed)  # before the head is built: its first weights come from the seed too
        self.network_ = self._network(train.extras.shape[1])
        with torch_threads(self.behaviour.num_threads):
            self.history_ = self._train(train, labels, valid, valid_labels)
        return self

    def _network(self, n_extras: int) -> _TaskNetwork:
        encoder = self.behaviour.transformer
        encoder = copy.deepcopy(encoder) if self.finetune else encoder
        dim = encoder.config.dim
        n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        item_dim = dim if self.task_ == "item-propensity" else 0
        head = TaskHead(2 * dim, n_extras, n_outputs, item_dim=item_dim, n_items=encoder.n_items, hidden=self.hidden,
                        state_dropout=self.state_dropout)
        return _TaskNetwork(encoder, head, frozen=not self.finetune)

    def _train(self, train: TaskInputs, labels: np.ndarray, valid: TaskInputs, valid_labels: np.ndarray) -> list[dict]:
        network, binary = self.network_, len(self.classes_) == 2
        extras = self._extras(train)
        positives = int(labels.sum()) if binary else 0
        pos_weight = (len(labels) - positives) / max(positives, 1) if binary else None
        states = None
        if self.finetune:
            module = network
            groups = [{"params": network.head.parameters(), "lr": self.training.lr},
                      {"params": network.encoder.parameters(), "lr": self.training.encoder_lr}]
        else:
            module, groups = network.head, [{"params": network.head.parameters(), "lr": self.training.lr}]
            states = self._states(train)

        def forward_rows(rows: np.ndarray) -> Tensor:
            return network(train, extras, rows, states)

        def validate() -> float:  # AUC (macro one-vs-rest for several classes), the benchmark's measure
            score = roc_auc(valid_labels, self.raw_proba(valid))
            return -1.0 if np.isnan(score) else score

        return fit_head(module, groups, forward_rows, labels, train.histories.lengths, validate, self.training, pos_weight)

    def _extras(self, inputs: TaskInputs) -> Tensor:
        return torch.from_numpy(((inputs.extras - self.extra_mean_) / self.extra_std_).astype(np.float32))

    def head_network(self, inputs: TaskInputs) -> tuple[nn.Module, TaskHead, Tensor]:
        """The fitted encoder and head (eval mode) and the standardised extras of `inputs`: what an
        explanation differentiates the head's probability through."""
        if not hasattr(self, "network_"):
            raise ShopformerError(f"{self.name} is not fitted yet: call fit(train, valid, context)")
        self.network_.eval()
        return self.network_.encoder, self.network_.head, self._extras(inputs)

    def _states(self, inputs: TaskInputs) -> Tensor:
        encoder = self.network_.encoder
        return _all_states(encoder, inputs.histories) if self.finetune else frozen_states(encoder, inputs)

    @torch.no_grad()
    def raw_proba(self, inputs: TaskInputs) -> np.ndarray:
        """Uncalibrated probabilities of encoded inputs (binary: P(label=1), else one column per class)."""
        self.network_.eval()
        extras, states, n = self._extras(inputs), self._states(inputs), len(inputs.histories.lengths)
        logits = torch.cat([self.network_(inputs, extras, np.arange(i, min(i + _BATCH, n)), states)
                            for i in range(0, n, _BATCH)])
        return (torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, 1)).numpy().astype(np.float64)

    # ----------------------------------------------------------------------------- predicting

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray:
        """P(label = 1) `(n,)`, or `(n, n_classes)` for multi-class tasks (not calibrated)."""
        if not hasattr(self, "network_"):
            raise ShopformerError(f"{self.name} is not fitted yet: call fit(train, valid, context)")
        with torch_threads(self.behaviour.num_threads):
            return self.raw_proba(task_inputs(self.behaviour, examples, context))

    # ----------------------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        """Writes `model.json` and `weights.safetensors` (the head; the encoder too when fine-tuned)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        module = self.network_ if self.finetune else self.network_.head
        if self.save_behaviour:
            self.behaviour.save(directory / "behaviour")
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, directory / "weights.safetensors")
        meta = {
            "kind": "transformer", "name": self.name, "task": self.task_,
            "classes": list(self.classes_), "finetune": self.finetune, "hidden": self.hidden, "state_dropout": self.state_dropout,
            "training": asdict(self.training), "extra_mean": self.extra_mean_.tolist(),
            "extra_std": self.extra_std_.tolist(), "history": self.history_,
        }
        write_header(directory / "model.json", "task_model", indent=1, **meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, behaviour: BehaviourModel) -> TransformerTaskModel:
        """Reads a model written by `save`, on top of the behaviour model it was trained from."""
        directory = Path(directory)
        meta = read_model_json(directory, "transformer")
        model = cls(meta["name"], behaviour, finetune=meta["finetune"], training=HeadTraining(**meta["training"]),
                    hidden=meta["hidden"], state_dropout=meta["state_dropout"])
        model.task_, model.classes_ = meta["task"], tuple(meta["classes"])
        model.extra_mean_ = np.asarray(meta["extra_mean"], dtype=np.float32)
        model.extra_std_ = np.asarray(meta["extra_std"], dtype=np.float32)
        model.history_ = meta["history"]
        model.network_ = model._network(len(model.extra_mean_))
        module = model.network_ if model.finetune else model.network_.head
        module.load_state_dict(load_file(directory / "weights.safetensors"))
        model.network_.eval()
        return model


def transformer_factory(name: str, finetune: bool, training: HeadTraining | None = None):
    """A `MODEL_FACTORIES` entry: the model on the dataset's shared behaviour model."""

    def make(context: TaskContext, shared: SharedBehaviour) -> TransformerTaskModel:
        behaviour = pretrained_behaviour_model(context, shared)
        return TransformerTaskModel(name, behaviour, finetune=finetune, training=training,
                                    save_behaviour=shared.pretrained)

    return make
