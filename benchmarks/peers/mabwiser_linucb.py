"""Play MABWiser's LinUCB on a fixed Shopformer bandit stream.

Runs inside ``benchmarks/peers/.venv-mabwiser`` (see ``setup_mabwiser.sh``) and imports only
mabwiser, numpy and the standard library, so it never touches the project's own dependencies.

The stream (``.npz``) holds ``context`` (n_rounds, dim), ``rewards`` (n_rounds, n_actions),
``batch`` and ``seed``. Because ``rewards`` holds every action's realised reward at every round
(common random numbers), the reward of any policy is ``rewards[i, actions[i]]`` and this run can
be compared round by round with Shopformer's own bandits.

Protocol: the first batch is chosen uniformly at random with
``numpy.random.default_rng(seed).integers(n_actions, size=batch)`` and the model is fitted on it;
every later batch is predicted with the current model and then learnt with ``partial_fit``.

Usage::

    benchmarks/peers/.venv-mabwiser/bin/python benchmarks/peers/mabwiser_linucb.py \\
        --stream STREAM.npz --out OUT.npz [--alpha 1.0] [--l2 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
from mabwiser._version import __version__ as MABWISER_VERSION
from mabwiser.mab import MAB, LearningPolicy


@dataclass(frozen=True)
class Stream:
    """One bandit stream as written by Shopformer's simulator."""

    context: np.ndarray  # float64 (n_rounds, dim)
    rewards: np.ndarray  # float64 (n_rounds, n_actions)
    batch: int
    seed: int

    @property
    def n_rounds(self) -> int:
        """Number of rounds in the stream."""
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions (MABWiser arms ``0 .. n_actions - 1``)."""
        return self.rewards.shape[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stream", required=True, help="input stream .npz")
    p.add_argument("--out", required=True, help="output .npz (actions, wall_s, versions)")
    p.add_argument("--alpha", type=float, default=1.0, help="LinUCB exploration factor")
    p.add_argument("--l2", type=float, default=1.0, help="ridge regularisation (l2_lambda)")
    return p.parse_args(argv)


def load_stream(path: str) -> Stream:
    """Read and check a stream file; no pickles, so any numpy version can read it."""
    with np.load(path, allow_pickle=False) as z:
        context = np.ascontiguousarray(z["context"], dtype=np.float64)
        rewards = np.ascontiguousarray(z["rewards"], dtype=np.float64)
        batch, seed = int(z["batch"]), int(z["seed"])
    if context.ndim != 2 or rewards.ndim != 2 or context.shape[0] != rewards.shape[0]:
        raise ValueError(f"context {context.shape} and rewards {rewards.shape} must be 2-D with equal rows")
    if batch < 1 or rewards.shape[0] == 0:
        raise ValueError(f"need batch >= 1 and at least one round (batch={batch}, rounds={rewards.shape[0]})")
    # MABWiser rejects non-finite rewards only inside fit; fail before any work is timed.
    if not (np.isfinite(context).all() and np.isfinite(rewards).all()):
        raise ValueError("context and rewards must be finite")
    return Stream(context, rewards, batch, seed)


def make_policy(n_actions: int, alpha: float, l2: float, seed: int) -> MAB:
    """LinUCB with one ridge regression per arm; contexts are used as given (scale=False)."""
    # MABWiser insists on a Python int seed (a numpy int64 fails its isinstance check).
    return MAB(
        arms=list(range(n_actions)),
        learning_policy=LearningPolicy.LinUCB(alpha=alpha, l2_lambda=l2),
        seed=int(seed),
    )


def first_actions(stream: Stream) -> np.ndarray:
    """Uniformly random actions for the first batch, drawn exactly as the protocol prescribes."""
    rng = np.random.default_rng(stream.seed)
    # Always draw `batch` values so a stream shorter than one batch still gets the same prefix.
    return rng.integers(stream.n_actions, size=stream.batch)[: min(stream.batch, stream.n_rounds)]


def predict_batch(mab: MAB, contexts: np.ndarray) -> np.ndarray:
    """Chosen arms for a batch; MABWiser returns a bare arm instead of a list for one context."""
    return np.atleast_1d(np.asarray(mab.predict(contexts), dtype=np.int64))


class Progress:
    """Prints one line per ~10% of rounds with elapsed time and a linear ETA."""

    def __init__(self, n_rounds: int, steps: int = 10):
        self.n_rounds = n_rounds
        self.step = max(1, -(-n_rounds // steps))  # ceil, so at most `steps` lines
        self.next_at = self.step
        self.t0 = time.perf_counter()

    def update(self, done: int, reward_sum: float) -> None:
        """Report once `done` rounds have crossed the next 10% mark (and at the end)."""
        if done < self.next_at and done < self.n_rounds:
            return
        while self.next_at <= done:
            self.next_at += self.step
        elapsed = time.perf_counter() - self.t0
        eta = elapsed * (self.n_rounds - done) / done
        print(
            f"[mabwiser-linucb] {done}/{self.n_rounds} rounds ({100 * done / self.n_rounds:.0f}%) "
            f"mean reward {reward_sum / done:.4f}  elapsed {elapsed:.1f}s  eta {eta:.1f}s",
            flush=True,
        )


def play(stream: Stream, alpha: float, l2: float) -> tuple[np.ndarray, float, float]:
    """Run the batched protocol; returns (actions, wall_s of predict+partial_fit, fit_s of the first fit)."""
    mab = make_policy(stream.n_actions, alpha, l2, stream.seed)
    n, b = stream.n_rounds, stream.batch
    actions = np.empty(n, dtype=np.int64)
    rows = np.arange(n)
    progress = Progress(n)

    first = first_actions(stream)
    end = first.size
    actions[:end] = first
    t = time.perf_counter()
    mab.fit(decisions=first, rewards=stream.rewards[rows[:end], first], contexts=stream.context[:end])
    fit_s = time.perf_counter() - t
    reward_sum = float(stream.rewards[rows[:end], first].sum())
    progress.update(end, reward_sum)

    wall_s = 0.0
    for start in range(end, n, b):
        stop = min(start + b, n)
        ctx = stream.context[start:stop]
        t = time.perf_counter()
        chosen = predict_batch(mab, ctx)
        got = stream.rewards[rows[start:stop], chosen]
        # Learning after the last batch changes nothing, but the protocol times it for every policy.
        mab.partial_fit(decisions=chosen, rewards=got, contexts=ctx)
        wall_s += time.perf_counter() - t
        actions[start:stop] = chosen
        reward_sum += float(got.sum())
        progress.update(stop, reward_sum)
    return actions, wall_s, fit_s


def save(path: str, actions: np.ndarray, wall_s: float, fit_s: float, stream: Stream, args: argparse.Namespace) -> None:
    """Write the result as a pickle-free .npz at exactly `path` (np.savez would add a suffix to a name)."""
    with open(path, "wb") as f:
        np.savez(
            f,
            actions=actions,
            wall_s=np.float64(wall_s),
            fit_s=np.float64(fit_s),
            mabwiser_version=np.str_(MABWISER_VERSION),
            numpy_version=np.str_(np.__version__),
            alpha=np.float64(args.alpha),
            l2=np.float64(args.l2),
            batch=np.int64(stream.batch),
            seed=np.int64(stream.seed),
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point: load the stream, play it, save the actions and timings."""
    args = parse_args(argv)
    stream = load_stream(args.stream)
    print(
        f"[mabwiser-linucb] mabwiser {MABWISER_VERSION}: {stream.n_rounds} rounds, {stream.n_actions} actions, "
        f"dim {stream.context.shape[1]}, batch {stream.batch}, seed {stream.seed}, alpha {args.alpha}, l2 {args.l2}",
        flush=True,
    )
    actions, wall_s, fit_s = play(stream, args.alpha, args.l2)
    save(args.out, actions, wall_s, fit_s, stream, args)
    mean = stream.rewards[np.arange(stream.n_rounds), actions].mean()
    print(
        f"[mabwiser-linucb] done: mean reward {mean:.4f}, predict+partial_fit {wall_s:.2f}s, first fit {fit_s:.3f}s -> {args.out}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
