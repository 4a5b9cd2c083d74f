"""Contextual bandits that fill a slate: LinUCB, linear Thompson sampling and epsilon-greedy.

Every action (item) has a ridge regression of its reward on the context: A_a = lambda I + sum x x^T,
b_a = sum r x, theta_a = A_a^-1 b_a. Per round a policy scores every action and fills the slate's
slots with the best distinct ones:

* LinUCB (Li et al., 2010):      theta_a . x + alpha sqrt(x^T A_a^-1 x)
* linear Thompson (Agrawal & Goyal, 2013): a draw from N(theta_a, v^2 A_a^-1), dotted with x
* epsilon-greedy:                theta_a . x, and with probability epsilon a uniformly random slate

`action_dist` gives each policy's probability of every action at every slot (exactly for the
deterministic and epsilon-greedy rules, by sampling for Thompson), the input off-policy evaluation needs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["POLICIES", "EpsilonGreedy", "LinUCB", "LinearThompson", "LinearBandit"]


class LinearBandit:
    """Per-action ridge regressions on the context; subclasses say how a slate is chosen."""

    def __init__(self, n_actions: int, dim: int, *, ridge: float = 1.0, seed: int = 0) -> None:
        self.n_actions, self.dim = n_actions, dim
        self.precision = np.tile(np.eye(dim) * ridge, (n_actions, 1, 1))
        self.moment = np.zeros((n_actions, dim))
        self.reward_squares, self.counts = np.zeros(n_actions), np.zeros(n_actions)
        self.rng = np.random.default_rng(seed)

    def update(self, context: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> LinearBandit:
        """Adds observed (context, action, reward) rounds, one at a time or in a batch."""
        context, actions, rewards = np.atleast_2d(context), np.atleast_1d(actions), np.atleast_1d(rewards)
        np.add.at(self.precision, actions, context[:, :, None] * context[:, None, :])
        np.add.at(self.moment, actions, rewards[:, None] * context)
        np.add.at(self.reward_squares, actions, rewards**2)
        np.add.at(self.counts, actions, 1.0)
        return self

    def _means(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        covariance = np.linalg.inv(self.precision)
        theta = np.einsum("aij,aj->ai", covariance, self.moment)
        return context @ theta.T, covariance

    def noise_scale(self, covariance: np.ndarray) -> float:
        """The rewards' noise standard deviation, pooled over actions: per action, a few rounds of zero
        reward would estimate it as zero and end that action's exploration for good."""
        theta = np.einsum("aij,aj->ai", covariance, self.moment)
        residual = np.maximum(self.reward_squares - (theta * self.moment).sum(1), 0.0).sum()
        freedom = np.maximum(self.counts - self.dim, 0.0).sum()
        return float(np.sqrt(residual / freedom)) if freedom > 0 and residual > 0 else 1.0

    def scores(self, context: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def choose(self, context: np.ndarray) -> np.ndarray:
        """One action per row of `context` (a single slot)."""
        return self.scores(context).argmax(1)

    def sampled_scores(self, context: np.ndarray, draws: int) -> np.ndarray:
        """(draws, rounds, actions): the scores a randomised policy could act on; deterministic rules repeat theirs."""
        return self.scores(context)[None]

    def action_dist(self, context: np.ndarray, slots: int) -> np.ndarray:
        """(rounds, actions, slots): probability of each action at each slot."""
        return _slate_dist(self.scores(context), slots)


def _slate_dist(scores: np.ndarray, slots: int) -> np.ndarray:
    """One-hot slates of the `slots` best-scored distinct actions of each round."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :slots]
    dist = np.zeros((*scores.shape, slots))
    rounds = np.arange(len(scores))
    for slot in range(slots):
        dist[rounds, order[:, slot], slot] = 1.0
    return dist


class LinUCB(LinearBandit):
    """`noise_scaled`: the width is also multiplied by the rewards' estimated noise (pooled over
    actions), so one `alpha` explores alike whether rewards are clicks or money."""

    def __init__(self, n_actions: int, dim: int, *, alpha: float = 1.0, ridge: float = 1.0, seed: int = 0,
                 noise_scaled: bool = False) -> None:
        super().__init__(n_actions, dim, ridge=ridge, seed=seed)
        self.alpha, self.noise_scaled = alpha, noise_scaled

    def scores(self, context: np.ndarray) -> np.ndarray:
        means, covariance = self._means(context)
        width = np.sqrt(np.einsum("ni,aij,nj->na", context, covariance, context))
        return means + self.alpha * (self.noise_scale(covariance) if self.noise_scaled else 1.0) * width


class LinearThompson(LinearBandit):
    """`scale` is v, the reward noise's standard deviation; None estimates it from the residuals of the
    regressions (sum r^2 - theta . b over the rounds beyond the dimension), pooled over actions."""

    def __init__(self, n_actions: int, dim: int, *, scale: float | None = 0.1, draws: int = 200, ridge: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__(n_actions, dim, ridge=ridge, seed=seed)
        self.scale, self.draws = scale, draws

    def _noise_scale(self, covariance: np.ndarray) -> np.ndarray:
        if self.scale is not None:
            return np.full(self.n_actions, self.scale)
        return np.full(self.n_actions, self.noise_scale(covariance))

    def _posterior(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The means and, per action, a factor L with L L^T the parameters' posterior covariance."""
        means, covariance = self._means(context)
        return means, np.linalg.cholesky(covariance) * self._noise_scale(covariance)[:, None, None]

    def sampled_scores(self, context: np.ndarray, draws: int) -> np.ndarray:
        means, factor = self._posterior(context)
        noise = np.einsum("aij,daj->dai", factor, self.rng.standard_normal((draws, self.n_actions, self.dim)))
        return means[None] + np.einsum("ni,dai->dna", context, noise)

    def _draw(self, context: np.ndarray) -> np.ndarray:
        return self.sampled_scores(context, 1)[0]

    def choose(self, context: np.ndarray) -> np.ndarray:
        # A fresh parameter draw for every row: rounds decided together still explore independently.
        means, factor = self._posterior(context)
        noise = np.einsum("aij,naj->nai", factor, self.rng.standard_normal((len(context), self.n_actions, self.dim)))
        return (means + np.einsum("ni,nai->na", context, noise)).argmax(1)

    def scores(self, context: np.ndarray) -> np.ndarray:
        return self._draw(context)

    def action_dist(self, context: np.ndarray, slots: int) -> np.ndarray:
        return np.mean([_slate_dist(self._draw(context), slots) for _ in range(self.draws)], axis=0)


class EpsilonGreedy(LinearBandit):
    def __init__(self, n_actions: int, dim: int, *, epsilon: float = 0.1, ridge: float = 1.0, seed: int = 0) -> None:
        super().__init__(n_actions, dim, ridge=ridge, seed=seed)
        self.epsilon = epsilon

    def scores(self, context: np.ndarray) -> np.ndarray:
        return self._means(context)[0]

    def choose(self, context: np.ndarray) -> np.ndarray:
        explore = self.rng.random(len(context)) < self.epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=len(context)), super().choose(context))

    def action_dist(self, context: np.ndarray, slots: int) -> np.ndarray:
        # A uniformly random slate puts every action at every slot with probability 1 / actions.
        return (1 - self.epsilon) * _slate_dist(self.scores(context), slots) + self.epsilon / self.n_actions


POLICIES = {"linucb": LinUCB, "linear-thompson": LinearThompson, "epsilon-greedy": EpsilonGreedy}
