"""Training objectives: what the model is asked to predict, and the loss on those predictions.

* Causal (SASRec): every position predicts the next item.
* Masked (BERT4Rec): a random share of items is hidden and predicted from both sides.

Losses see only positions with a real target. They gather those positions *before* the output
projection, so padding costs no (positions x catalog) matrix products at all.

* `FullSoftmaxLoss`: cross-entropy over the whole catalog. Exact; right for up to ~10^5 items.
* `SampledSoftmaxLoss`: cross-entropy over the target plus negatives shared by the whole batch,
  with the log-Q correction (Bengio & Senecal, 2008; Yi et al., 2019) so the sampled softmax
  estimates the full one instead of a popularity-biased version of it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from shopformer.data.codes import FIRST_CODE, PADDING_CODE

if TYPE_CHECKING:
    from shopformer.models.config import ModelConfig
    from shopformer.models.transformer import BehaviourTransformer

__all__ = [
    "FullSoftmaxLoss",
    "NextItemLoss",
    "SampledSoftmaxLoss",
    "build_loss",
    "mask_items",
    "next_item_targets",
]



class NextItemLoss(Protocol):
    def __call__(self, model: BehaviourTransformer, hidden: Tensor, targets: Tensor) -> Tensor: ...


def next_item_targets(windows: Tensor) -> tuple[Tensor, Tensor]:
    """Causal inputs and targets of left-padded windows: position t predicts item t + 1.

    A window's first real item has only padding before it: it is input, never a target.
    """
    inputs, targets = windows[:, :-1], windows[:, 1:]
    return inputs, targets.masked_fill(inputs == PADDING_CODE, PADDING_CODE)


def mask_items(items: Tensor, probability: float, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Masked-item inputs: (positions to hide, targets that are 0 except at hidden positions).

    Every sequence hides at least its last item, so each one trains something, and the most
    recent position, the one read at prediction time, is trained as often as the rest.
    """
    real = items >= FIRST_CODE
    draw = torch.rand(items.shape, generator=generator, device=items.device) < probability
    masked = real & draw
    masked[:, -1] |= real[:, -1]
    targets = torch.where(masked, items, torch.zeros_like(items))
    return masked, targets


def _gather_valid(hidden: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    keep = targets >= FIRST_CODE
    return hidden[keep], targets[keep]


class _CatalogCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ table.T` against `targets`, fused for memory traffic.

    Why not `F.cross_entropy(hidden @ table.T, ...)`: the (positions x catalog) logits are the
    largest tensors of training, and autograd would write them out four or five times (logits,
    log-softmax, a zero-filled one-hot gradient, its backward). Here they are written once and
    turned into their own gradient in place: d loss / d logits = softmax - smoothed one-hot.
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, table: Tensor, targets: Tensor, smoothing: float) -> Tensor:
        logits = hidden @ table.T
        log_partition = torch.logsumexp(logits, dim=1)
        target_logits = logits.gather(1, targets[:, None]).squeeze(1)
        # Label smoothing spreads `smoothing` of the target's mass evenly over the catalog.
        losses = log_partition - (1 - smoothing) * target_logits - smoothing * logits.mean(1)
        ctx.save_for_backward(hidden, table, targets, logits, log_partition)
        ctx.smoothing = smoothing
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        hidden, table, targets, logits, log_partition = ctx.saved_tensors
        gradient = logits.sub_(log_partition[:, None]).exp_()  # softmax, in the logits' memory
        rows = torch.arange(len(targets), device=targets.device)
        gradient[rows, targets] -= 1 - ctx.smoothing
        if ctx.smoothing:
            gradient.sub_(ctx.smoothing / gradient.shape[1])
        gradient.mul_(grad_output / len(targets))
        return gradient @ table, gradient.T @ hidden, None, None


class FullSoftmaxLoss:
    """Cross-entropy of the target against every real item of the catalog."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def __call__(self, model: BehaviourTransformer, hidden: Tensor, targets: Tensor) -> Tensor:
        hidden, targets = _gather_valid(hidden, targets)
        # Dropping the padding/unknown rows of the table keeps them out of the softmax altogether.
        table = model.item_table()[FIRST_CODE:]
        return _CatalogCrossEntropy.apply(hidden, table, targets.long() - FIRST_CODE, self.label_smoothing)


class SampledSoftmaxLoss:
    """Cross-entropy of the target against `negatives` items drawn once per batch.

    `item_counts` (n_items,) gives popularity sampling (q ∝ count); None samples uniformly.
    Only the target and negative items are encoded, never the whole catalog.
    """

    def __init__(
        self,
        n_items: int,
        negatives: int,
        item_counts: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        weights = torch.zeros(n_items, dtype=torch.float64)
        if item_counts is None:
            weights[FIRST_CODE:] = 1.0
        else:
            weights[FIRST_CODE:] = torch.as_tensor(item_counts[FIRST_CODE:], dtype=torch.float64)
        if weights.sum() <= 0:
            raise ValueError("no item can be sampled as a negative")
        self.probability = (weights / weights.sum()).float()
        # Targets never drawn as negatives still need a finite correction term.
        self.log_q = torch.log(self.probability.clamp(min=1e-12))
        self.negatives, self.generator = negatives, generator

    def __call__(self, model: BehaviourTransformer, hidden: Tensor, targets: Tensor) -> Tensor:
        hidden, targets = _gather_valid(hidden, targets)
        targets = targets.long()
        negatives = torch.multinomial(self.probability, self.negatives, replacement=True, generator=self.generator)
        codes, inverse = torch.unique(torch.cat([targets, negatives]), return_inverse=True)
        vectors = model.item_encoder(codes)
        target_vectors, negative_vectors = vectors[inverse[: len(targets)]], vectors[inverse[len(targets) :]]
        # log-Q correction: subtract log q(item) from every candidate's logit. Popular items are drawn
        # often, so without it the model would learn to push them down far more than the full
        # softmax would.
        positive = (hidden * target_vectors).sum(-1, keepdim=True) - self.log_q[targets].unsqueeze(-1)
        negative = hidden @ negative_vectors.T - self.log_q[negatives]
        # A negative that happens to be the row's target is not a negative ("accidental hit").
        negative = negative.masked_fill(negatives[None, :] == targets[:, None], -math.inf)
        logits = torch.cat([positive, negative], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=logits.device))


def build_loss(
    config: ModelConfig,
    n_items: int,
    item_counts: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> NextItemLoss:
    """The loss named by `config.loss`; `item_counts` feed popularity-based negative sampling."""
    if config.loss == "full":
        return FullSoftmaxLoss(config.label_smoothing)
    counts = item_counts if config.negative_sampling == "popularity" else None
    return SampledSoftmaxLoss(n_items, config.negatives, counts, generator)
