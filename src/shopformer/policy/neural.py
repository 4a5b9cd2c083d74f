"""Neural-linear Thompson sampling (Riquelme et al., 2018): a small network learns a representation of
the context; Bayesian linear regressions on its last hidden layer, one per action, do the exploring.

The network (context -> 2 hidden layers -> one reward per action, squared error on the taken
action) is refitted on every round seen so far each time the data has doubled since the last fit,
and the per-action regressions are then rebuilt on the new features; between fits, new rounds
update the regressions only. Before the first fit the features are the raw context.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shopformer.policy.bandits import LinearThompson

__all__ = ["NeuralLinearThompson"]


class NeuralLinearThompson:
    """A drop-in for `LinearThompson` (`update`, `choose`, `sampled_scores`, `counts`) over learned features."""

    def __init__(self, n_actions: int, dim: int, *, hidden: int = 32, first_fit: int = 1000, epochs: int = 20,
                 ridge: float = 1.0, seed: int | None = 0) -> None:
        self.n_actions, self.dim, self.hidden, self.epochs, self.ridge = n_actions, dim, hidden, epochs, ridge
        self.seed = seed
        self._next_fit, self._rounds = first_fit, 0
        self._data: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._net: nn.Sequential | None = None
        self._mean, self._std = np.zeros(dim), np.ones(dim)
        self.linear = self._make_linear(dim)

    def _make_linear(self, dim: int):
        return LinearThompson(self.n_actions, dim, scale=None, ridge=self.ridge, seed=self.seed)

    @property
    def counts(self) -> np.ndarray:
        return self.linear.counts

    def features(self, context: np.ndarray) -> np.ndarray:
        context = np.atleast_2d(context)
        if self._net is None:
            return context
        with torch.no_grad():
            x = torch.as_tensor((context - self._mean) / self._std, dtype=torch.float32)
            body = self._net[:-1](x).numpy().astype(np.float64)
        # The raw context stays beside the learned features: the regressions are never worse off than linear ones.
        return np.hstack([context, body])

    def update(self, context: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> NeuralLinearThompson:
        context, actions, rewards = np.atleast_2d(context), np.atleast_1d(actions), np.atleast_1d(rewards).astype(float)
        self._data.append((context, actions, rewards))
        self._rounds += len(actions)
        if self._rounds >= self._next_fit:
            self._fit()
        else:
            self.linear.update(self.features(context), actions, rewards)
        return self

    def _fit(self) -> None:
        context = np.vstack([c for c, _, _ in self._data])
        actions = np.concatenate([a for _, a, _ in self._data])
        rewards = np.concatenate([r for _, _, r in self._data])
        self._next_fit = 2 * len(actions)
        self._mean, self._std = context.mean(0), context.std(0) + 1e-6
        self._net = _train(self._net, (context - self._mean) / self._std, actions, rewards, self.n_actions, self.hidden,
                           self.epochs, self.seed)
        self.linear = self._make_linear(self.dim + self.hidden)
        self.linear.update(self.features(context), actions, rewards)

    def choose(self, context: np.ndarray) -> np.ndarray:
        return self.linear.choose(self.features(context))

    def sampled_scores(self, context: np.ndarray, draws: int) -> np.ndarray:
        return self.linear.sampled_scores(self.features(context), draws)


def _train(net: nn.Sequential | None, x: np.ndarray, actions: np.ndarray, rewards: np.ndarray, n_actions: int,
           hidden: int, epochs: int, seed: int | None) -> nn.Sequential:
    """Fits (warm-started from `net`) the reward of each taken action by squared error."""
    generator = torch.Generator().manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31))
    if net is None:
        with torch.random.fork_rng():  # seeds the initial weights without touching the caller's global generator
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    xs, ys = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(rewards, dtype=torch.float32)
    taken = torch.as_tensor(actions, dtype=torch.long)
    for _ in range(epochs):
        for batch in torch.randperm(len(xs), generator=generator).split(256):
            predicted = net(xs[batch]).gather(1, taken[batch, None]).squeeze(1)
            loss = ((predicted - ys[batch]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return net
