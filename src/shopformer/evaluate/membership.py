"""Membership inference: can an attacker tell the users a model was trained on from those it was not?

The loss-threshold attack (Yeom et al., 2018) guesses "member" when a user's loss is low: a model
that memorised its training users gives them lower next-item losses than users it never saw. Its
ROC AUC over members and non-members measures the leak: 0.5 is no better than a coin. Each user's
loss is the mean cross-entropy of their next items, each predicted from the events before it, over
the model's scores (count priors included: what the deployed model outputs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from shopformer.data.codes import FIRST_CODE
from shopformer.data.sequences import SequenceArrays

__all__ = ["loss_threshold_attack", "user_losses"]

Scorer = Callable[[SequenceArrays], torch.Tensor]


def user_losses(scorer: Scorer, sequences: SequenceArrays, *, history: int = 50, targets_per_user: int = 10,
                batch_size: int = 1024) -> np.ndarray:
    """Each user's mean next-item cross-entropy over their last `targets_per_user` events (NaN for
    users with fewer than two events); every target is predicted from up to `history` events before it.
    Unknown-item targets (which no model can rank) are left out."""
    lengths = sequences.lengths
    n_targets = np.clip(lengths - 1, 0, targets_per_user)
    rows = np.repeat(np.arange(len(lengths)), n_targets)
    # Target t of a user sits at flat position end - n_targets + t: its history is the events before it.
    first_target = sequences.offsets[1:] - n_targets
    positions = np.repeat(first_target, n_targets) + _ranks(n_targets)
    starts = np.maximum(positions - history, sequences.offsets[:-1][rows])
    losses = np.empty(len(positions))
    for begin in range(0, len(positions), batch_size):
        part = slice(begin, begin + batch_size)
        scores = scorer(sequences.windows(starts[part], positions[part] - starts[part])).float()
        targets = torch.from_numpy(sequences.items[positions[part]].astype(np.int64))
        log_partition = torch.logsumexp(scores, dim=1)
        losses[part] = (log_partition - scores.gather(1, targets[:, None]).squeeze(1)).numpy()
    rankable = sequences.items[positions] >= FIRST_CODE
    totals = np.bincount(rows[rankable], weights=losses[rankable], minlength=len(lengths))
    counts = np.bincount(rows[rankable], minlength=len(lengths))
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c - 1 for every count c, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def loss_threshold_attack(member_losses: np.ndarray, non_member_losses: np.ndarray) -> dict[str, float]:
    """AUC and advantage (best TPR - FPR over thresholds) of guessing "member" below a loss threshold."""
    members, others = (np.asarray(x, dtype=float) for x in (member_losses, non_member_losses))
    members, others = members[np.isfinite(members)], others[np.isfinite(others)]
    if not len(members) or not len(others):
        raise ValueError("the attack needs at least one member and one non-member with a finite loss")
    labels = np.concatenate([np.ones(len(members)), np.zeros(len(others))])
    guesses = -np.concatenate([members, others])  # a lower loss: more likely a member
    false_positive, true_positive, _ = roc_curve(labels, guesses)  # tied losses are one threshold
    return {"auc": float(roc_auc_score(labels, guesses)), "advantage": float(np.max(true_positive - false_positive)),
            "members": int(len(members)), "non_members": int(len(others))}
