"""Attribution of one prediction to the events of one history, whatever the model behind it.

Three methods, one currency: a signed weight per event, positive when the event raised the score.

* Occlusion (leave-one-out): weight = score with every event − score without that event. All
  variants (the full history, each event left out, each attribute group left out) are scored in one
  batched call of a `MaskScorer`, so a 50-event history costs one forward pass of 51 rows.
* Banzhaf (random occlusion): weight = mean score of random partial histories with the event − mean
  of those without it; 64 masks in one batched call. Redundant events share credit.
* Integrated gradients (Sundararajan et al., 2017) on the input embeddings: each event's item vector
  and event-type embedding are scaled from 0 to their value along `steps` points (one batch of
  `steps` rows); weight = Σ_d x_d · mean_k ∂f/∂x_d(α_k x). Positions and time gaps stay as they are,
  so the baseline is "the same visits with no content", and the weights add up to
  f(x) − f(baseline) (completeness), up to the Riemann error.

Faithfulness is measured with deletion and insertion curves (Petsiuk et al., 2018): the score after
removing (deletion) or keeping only (insertion) the first k events of an ordering, for the
attribution's ordering and for the random and most-recent-first baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from shopformer.data.codes import UNKNOWN_CODE

__all__ = ["BASELINES", "Attribution", "MaskScorer", "banzhaf", "deletion_scores", "insertion_scores", "integrated_gradients",
           "leave_one_out_masks", "occlusion", "random_order", "recency_order", "weight_order"]

#: Target score of a history reduced to the events of each row of a keep-mask `(variants, n)` bool
#: array: `(variants,)` floats. Row `r` keeps event `j` where `masks[r, j]`; a row may keep none.
MaskScorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Attribution:
    """Signed weights of the `n` events of one history for one target score.

    `score` is the target's score with every event; `weights[j]` how much event `j` raised it
    (negative: lowered it). `groups` maps a group name (an attribute value shared by several events,
    e.g. "brand:Acme") to the score drop when all of that group's events are left out together.
    `baseline` is the score IG integrates from (None for occlusion).
    """

    method: str
    score: float
    weights: np.ndarray
    groups: dict[str, float] = field(default_factory=dict)
    baseline: float | None = None


def leave_one_out_masks(n: int) -> np.ndarray:
    """`(n + 1, n)` keep-masks: row 0 keeps every event, row `j + 1` all but event `j`."""
    masks = np.ones((n + 1, n), dtype=bool)
    masks[np.arange(1, n + 1), np.arange(n)] = False
    return masks


def occlusion(scorer: MaskScorer, n: int, groups: Mapping[str, np.ndarray] | None = None) -> Attribution:
    """Leave-one-out weights of `n` events (and of each group's events left out together), one scorer call.

    `groups` maps a name to a `(n,)` bool array of the events in that group.
    """
    groups = dict(groups or {})
    masks = leave_one_out_masks(n)
    if groups:
        masks = np.vstack([masks, ~np.stack([np.asarray(g, dtype=bool) for g in groups.values()])])
    scores = np.asarray(scorer(masks), dtype=np.float64)
    full = float(scores[0])
    group_weights = {name: full - float(s) for name, s in zip(groups, scores[n + 1 :], strict=True)}
    return Attribution("occlusion", full, full - scores[1 : n + 1], group_weights)


def banzhaf(scorer: MaskScorer, n: int, groups: Mapping[str, np.ndarray] | None = None, samples: int = 64,
            seed: int = 0) -> Attribution:
    """Banzhaf weights of `n` events: the mean score of random halves of the history that keep the
    event minus the mean of those that leave it out (maximum-sample-reuse estimate, Wang & Jia 2023).

    Where leave-one-out sees each event against all the others, this sees it against many partial
    histories, so events that stand in for each other (three views of one item, a session of
    similar items) share the credit instead of each looking dispensable. `samples` masks (every
    subset when `2**n <= samples`) plus the full history and the groups, in one scorer call; the
    fixed `seed` makes the same request give the same explanation.
    """
    groups = dict(groups or {})
    if 2**n <= samples:
        halves = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    else:
        halves = np.random.default_rng(seed).random((samples, n)) < 0.5
    masks = np.vstack([np.ones((1, n), dtype=bool), halves])
    if groups:
        masks = np.vstack([masks, ~np.stack([np.asarray(g, dtype=bool) for g in groups.values()])])
    scores = np.asarray(scorer(masks), dtype=np.float64)
    full, sampled = float(scores[0]), scores[1 : 1 + len(halves)]
    kept = halves.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):  # an event in every sample or in none: no estimate
        weights = sampled @ halves / kept - sampled @ ~halves / (len(halves) - kept)
    group_weights = {name: full - float(s) for name, s in zip(groups, scores[1 + len(halves) :], strict=True)}
    return Attribution("banzhaf", full, np.nan_to_num(weights), group_weights)


# ----------------------------------------------------------------------------- integrated gradients


#: IG baselines: "zero" content (no item vector, no event-type embedding), or every event turned into
#: an event of the unknown item with unknown type (the vectors the model learned for "something").
BASELINES = ("zero", "unknown")


@contextmanager
def _interpolated_content(transformer: nn.Module, alphas: Tensor, baseline: str,
                          recorded: list[tuple[bool, Tensor, Tensor, Tensor]]) -> Iterator[None]:
    """While active, the item vectors and event-type embeddings x of history batches (2-d code
    tensors with one row per alpha) come out as x' + alpha (x - x'), x' the baseline's; each call is
    recorded as (is the item encoder, codes, interpolated output, x - x').

    Hooks, not a copy of the forward pass: the network runs exactly as it scores. The item table
    (called without codes) and candidate vectors (1-d codes) are left alone.
    """
    modules = [(True, transformer.item_encoder), (False, getattr(transformer.sequence_encoder, "event_type", None))]
    modules = [(is_item, m) for is_item, m in modules if m is not None]
    with torch.no_grad():  # before the hooks exist: these calls must not be interpolated themselves
        unknown = torch.full((1, 1), UNKNOWN_CODE, dtype=torch.long)
        bases = {is_item: m(unknown)[0, 0] * (baseline == "unknown") for is_item, m in modules}

    def hook(is_item: bool):
        def interpolate(_: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
            codes = args[0] if args else None
            if codes is None or codes.dim() != 2 or codes.shape[0] != len(alphas):
                return None
            base = bases[is_item].to(output.dtype)
            mixed = base + alphas.view(-1, 1, 1).to(output.dtype) * (output - base)
            recorded.append((is_item, codes, mixed, (output - base).detach()))
            return mixed
        return interpolate

    handles = [m.register_forward_hook(hook(is_item)) for is_item, m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def integrated_gradients(transformer: nn.Module, target: Callable[[int], Tensor], n_events: int,
                         steps: int = 32, baseline: str = "zero") -> Attribution:
    """IG weights of the `n_events` events of one history (see `BASELINES`).

    `target(b)` runs the network on `b` copies of the history (through `transformer`, a
    `BehaviourTransformer` or a task network's copy of one) and returns the `(b,)` target scores.
    The events are the history batch's non-padding columns, oldest first, matched to the last
    `n_events` events (older ones the model does not read get 0). Midpoint Riemann sum over `steps`
    points, computed in one batch with the two ends (baseline and full history) as extra rows.
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown IG baseline {baseline!r}; choose from {', '.join(BASELINES)}")
    alphas = torch.cat([(torch.arange(steps, dtype=torch.float32) + 0.5) / steps, torch.tensor([0.0, 1.0])])
    recorded: list[tuple[bool, Tensor, Tensor, Tensor]] = []
    was_training = transformer.training
    transformer.eval()
    try:
        with torch.enable_grad(), _interpolated_content(transformer, alphas, baseline, recorded):
            scores = target(len(alphas))
            items = [codes for is_item, codes, _, _ in recorded if is_item]
            if not items:
                raise RuntimeError("the target never ran the history through the transformer's item encoder")
            grads = torch.autograd.grad(scores[:steps].sum(), [r[2] for r in recorded], allow_unused=True)
    finally:
        transformer.train(was_training)
    per_column = torch.zeros(items[0].shape[1], dtype=torch.float64)
    for (_, _, _, delta), grad in zip(recorded, grads, strict=True):
        if grad is not None:  # (x - x') · mean gradient, summed over the embedding dimensions
            per_column += (grad[:steps].mean(0) * delta[-1]).sum(-1).double()
    events = per_column[items[0][0] != 0].numpy()[-n_events:] if n_events else np.zeros(0)
    weights = np.concatenate([np.zeros(n_events - len(events)), events])
    ends = scores.detach().double()
    return Attribution("integrated_gradients", float(ends[-1]), weights, baseline=float(ends[-2]))


# ----------------------------------------------------------------------------- orderings and curves


def weight_order(weights: np.ndarray) -> np.ndarray:
    """Events from the most positive weight down (ties: the most recent first)."""
    n = len(weights)
    return np.lexsort((-np.arange(n), -np.asarray(weights)))


def recency_order(n: int) -> np.ndarray:
    """The most recent event first: the baseline "the last thing they did explains it"."""
    return np.arange(n)[::-1].copy()


def random_order(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random order: the baseline any attribution has to beat."""
    return rng.permutation(n)


def _first_k_masks(order: np.ndarray, ks: Sequence[int], keep: bool) -> np.ndarray:
    n = len(order)
    masks = np.full((len(ks), n), not keep, dtype=bool)
    for row, k in enumerate(ks):
        masks[row, order[: min(k, n)]] = keep
    return masks


def deletion_scores(scorer: MaskScorer, order: np.ndarray, ks: Sequence[int] = (1, 2, 3, 4, 5)) -> np.ndarray:
    """Target scores after removing the first `k` events of `order`, for each `k` (one scorer call)."""
    return np.asarray(scorer(_first_k_masks(order, ks, keep=False)), dtype=np.float64)


def insertion_scores(scorer: MaskScorer, order: np.ndarray, ks: Sequence[int] = (0, 1, 2, 3, 4, 5)) -> np.ndarray:
    """Target scores with only the first `k` events of `order` kept, for each `k` (one scorer call)."""
    return np.asarray(scorer(_first_k_masks(order, ks, keep=True)), dtype=np.float64)
