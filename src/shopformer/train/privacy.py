"""User-level differentially private training (DP-SGD): each user's whole history is one unit.

Per step, every user is sampled independently with probability q (Poisson sampling). A sampled
user contributes one of their training windows, drawn at random; their gradient is clipped to
norm C (`train.user_gradients`: all users of a step in one batched pass); the clipped gradients
are summed, Gaussian noise N(0, (σC)²) is added to every coordinate, and the sum is
divided by the expected number of sampled users qN. σ is chosen so that the planned steps spend
the target ε at δ (RDP accountant); the ε actually spent is accounted step by step and reported.

Nothing is learned from a user except through their clipped gradient, so the trained weights are
(ε, δ)-DP with respect to adding or removing one user. Model selection on validation would spend
privacy too: DP runs train their configured epochs and keep the last weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from shopformer.errors import ConfigError

__all__ = ["DPPlan", "noisy_mean", "one_window_each", "plan_dp", "sampled_users"]


@dataclass(frozen=True)
class DPPlan:
    """The noise and sampling that spend `epsilon` at `delta` over `steps` steps."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int

    def as_dict(self) -> dict:
        return {"target_epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": self.noise_multiplier,
                "max_grad_norm": self.max_grad_norm, "sample_rate": self.sample_rate, "steps": self.steps,
                "unit": "user", "accountant": "rdp"}


def plan_dp(epsilon: float, delta: float | None, n_users: int, users_per_step: int, epochs: int,
            max_grad_norm: float) -> DPPlan:
    """The noise multiplier for Poisson sampling at rate users_per_step / n_users over `epochs`."""
    try:
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError:
        raise ConfigError("differentially private training needs opacus: pip install 'shopformer[privacy]'") from None
    if n_users < 2:
        raise ConfigError("differentially private training needs at least two users")
    delta = 1.0 / n_users if delta is None else delta
    rate = min(1.0, users_per_step / n_users)
    steps = max(1, epochs * math.ceil(1.0 / rate))
    sigma = get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=rate, steps=steps, accountant="rdp")
    return DPPlan(epsilon, delta, float(sigma), max_grad_norm, rate, steps)


def sampled_users(n_users: int, rate: float, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Users of each step, each included independently with probability `rate` (may be empty)."""
    for _ in range(steps):
        yield np.flatnonzero(rng.random(n_users) < rate)


def noisy_mean(clipped_sum: list[torch.Tensor], plan: DPPlan, n_users: int, generator: torch.Generator) -> list[torch.Tensor]:
    """(sum of clipped user gradients + N(0, (σC)²)) / (q N): the private gradient of one step."""
    std = plan.noise_multiplier * plan.max_grad_norm
    expected = plan.sample_rate * n_users
    return [(g + torch.randn(g.shape, generator=generator, dtype=g.dtype) * std) / expected for g in clipped_sum]


def one_window_each(windows: list[np.ndarray], users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One window row per sampled user, drawn uniformly from that user's windows.

    Whatever window is drawn, the user's clipped gradient has norm at most C: the sensitivity of a
    step to one user stays C, as the accountant assumes.
    """
    return np.array([windows[u][rng.integers(len(windows[u]))] for u in users], dtype=np.int64)
