"""The loop that trains a task head (and, when fine-tuning, the encoder under it).

`fit_head` trains any `nn.Module` whose logits come from a `forward_rows(rows)` closure, with
early stopping on a validation score: the same loop serves a frozen encoder (states computed
once) and end-to-end fine-tuning (states recomputed per batch through the encoder).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from shopformer.models.heads import task_loss
from shopformer.train.batches import pooled_batches

__all__ = ["HeadTraining", "fit_head"]


@dataclass(frozen=True)
class HeadTraining:
    """Optimisation of a task head (and, when fine-tuning, of the encoder under it)."""

    lr: float = 1e-3
    encoder_lr: float = 1e-4
    weight_decay: float = 1e-2
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 4
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = False


def fit_head(
    module: nn.Module,
    param_groups: list[dict],
    forward_rows: Callable[[np.ndarray], Tensor],
    labels: np.ndarray,
    lengths: np.ndarray,
    validate: Callable[[], float],
    config: HeadTraining,
    pos_weight: float | None = None,
) -> list[dict]:
    """Trains `module` on rows `0..len(labels)-1`; keeps the weights of the best `validate()` score.

    `forward_rows(rows)` returns the logits of those training rows (in training mode);
    `validate()` scores the current weights on validation data (higher is better). Stops after
    `patience` epochs without gain, `max_epochs`, or `max_seconds`. Returns per-epoch metrics.
    """
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    targets = torch.tensor(np.asarray(labels))
    best, best_epoch, best_state = -math.inf, 0, copy.deepcopy(module.state_dict())
    history, started = [], time.perf_counter()
    epochs = tqdm(range(config.max_epochs), desc="task head", disable=not config.progress, leave=False)
    for epoch in epochs:
        module.train()
        total = 0.0
        for rows in pooled_batches(lengths, config.batch_size, rng, sort_pool=20):
            loss = task_loss(forward_rows(rows), targets[rows], pos_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), 5.0)
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        module.eval()
        score = validate()
        history.append({"epoch": epoch + 1, "train_loss": total / max(len(labels), 1), "valid_score": score})
        epochs.set_postfix(valid=f"{score:.4f}")
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(module.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
        if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
            break
    module.load_state_dict(best_state)
    module.eval()
    return history
