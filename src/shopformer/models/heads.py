"""Task heads over the behaviour Transformer's user state (their training loop: `train.heads`).

A head reads what the sequence encoder knows about a user at a cut-off (the last hidden state and
the mean of all hidden states) plus what a left-padded event sequence cannot know: scalar context
such as the time from the last visible event to the cut-off, and, for item-level tasks, the
candidate item's vector. Binary tasks get one logit, multi-class tasks one per class.

"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TaskHead", "pool_states", "task_loss"]


def pool_states(hidden: Tensor, valid: Tensor) -> Tensor:
    """(batch, length, dim) hidden states of left-padded rows → (batch, 2 * dim) user states.

    The last position is the state that predicts the next event (what pre-training optimised);
    the mean over real positions summarises the whole visible history, which matters for
    user-level tasks (churn, propensity) more than the most recent click does.
    """
    weights = valid.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return torch.cat([hidden[:, -1], mean], dim=1)


class TaskHead(nn.Module):
    """Two-layer MLP from a user state (+ scalar extras, + a candidate item vector) to logits.

    With a candidate (`item_dim > 0`) the input also holds the candidate's vector, its element-wise
    product with the last hidden state and their dot product: the dot product is exactly the
    pre-trained next-item score of that item, so the head starts from what pre-training learned.

    With `n_items`, every item also gets a learned scalar (zero at first): the task's own view of
    the item (how often seeing it ends in a purchase, say), which next-item pre-training does not
    learn. Its maximum and mean over the current session's items, and the candidate's, are added
    to the logits.
    """

    def __init__(self, state_dim: int, n_extras: int, n_outputs: int, *, item_dim: int = 0, n_items: int = 0,
                 hidden: int = 64, dropout: float = 0.1, state_dropout: float = 0.0) -> None:
        super().__init__()
        self.item_dim = item_dim
        self.item_bias = nn.Embedding(n_items, n_outputs, padding_idx=0) if n_items else None
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)
        n_inputs = state_dim + n_extras + (2 * item_dim + 1 if item_dim else 0)
        self.state_dropout = nn.Dropout(state_dropout)
        self.net = nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs)
        )
        # Wide part: a linear path from the scalar extras (and the item score) straight to the logits.
        # It learns the strong, simple signals (recency, counts) in a few steps, while the deep part,
        # which sees the 2 * dim state too, adds only what those cannot explain.
        self.wide = nn.Linear(n_extras + (1 if item_dim else 0), n_outputs)

    def forward(self, state: Tensor, extras: Tensor, candidate: Tensor | None = None,
                session_items: Tensor | None = None, candidate_codes: Tensor | None = None) -> Tensor:
        """Logits from states `(b, state_dim)`, extras `(b, n_extras)`, candidate vectors `(b, item_dim)`
        and, with item scalars, left-padded session item codes `(b, length)` and candidate codes `(b,)`."""
        logits = self._mlp_and_wide(state, extras, candidate)
        if self.item_bias is not None:
            logits = logits + self._item_terms(session_items, candidate_codes)
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def _item_terms(self, session_items: Tensor | None, candidate_codes: Tensor | None) -> Tensor:
        if session_items is None:
            raise ValueError("this head learns item scalars: pass the session's item codes")
        bias = self.item_bias(session_items)  # (b, length, n_outputs); padding rows are zero
        present = (session_items != 0).unsqueeze(-1)
        best = bias.masked_fill(~present, -1e4).max(1).values.clamp(min=-1e3) * present.any(1)
        mean = bias.sum(1) / present.sum(1).clamp(min=1)
        terms = best + mean
        return terms if candidate_codes is None else terms + self.item_bias(candidate_codes)

    def _mlp_and_wide(self, state: Tensor, extras: Tensor, candidate: Tensor | None) -> Tensor:
        state = self.state_dropout(state)
        parts, wide = [state, extras], [extras]
        if self.item_dim:
            if candidate is None:
                raise ValueError("this head scores candidate items: pass their vectors")
            last = state[:, : self.item_dim]
            score = (last * candidate).sum(1, keepdim=True)
            parts += [candidate, last * candidate, score]
            wide.append(score)
        return self.net(torch.cat(parts, dim=1)) + self.wide(torch.cat(wide, dim=1))


def task_loss(logits: Tensor, labels: Tensor, pos_weight: float | None = None) -> Tensor:
    """Binary cross-entropy (positives weighted by `pos_weight`) or multi-class cross-entropy."""
    if logits.dim() == 1:
        weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)
    return F.cross_entropy(logits, labels.long())
