"""Training loop of the behaviour Transformer: AdamW, warm-up, early stopping, checkpoints.

Validation ranks each user's held-out item against the full catalog (no sampled negatives) and
breaks ties against the target, the protocol published numbers use; by default the user's history
items are not candidates, as in `Shopformer.recommend`. Randomness is derived from
`(seed, epoch)` at the start of every epoch, so a run resumed from a checkpoint continues exactly
as the uninterrupted run would have; a private run's user sampling and noise are the exception.

Started by torchrun or Ray Train, the loop runs data-parallel (`train.distributed`): every rank
trains on its share of each global batch, rank 0 validates, writes and decides when to stop.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from shopformer.data.codes import FIRST_CODE
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.evaluate.ranking import evaluate_next_item
from shopformer.models.inputs import Batch, gather_windows
from shopformer.models.transformer import BehaviourTransformer
from shopformer.runtime import torch_threads
from shopformer.train.batches import evaluation_cases, training_windows, window_batches
from shopformer.train.config import TrainConfig
from shopformer.train.distributed import process_ranks
from shopformer.train.objectives import build_loss, mask_items, next_item_targets
from shopformer.train.privacy import DPPlan, noisy_mean, one_window_each, plan_dp, sampled_users
from shopformer.train.user_gradients import UserClippedGradients

__all__ = ["Callback", "Trainer", "validation_metrics"]

logger = logging.getLogger(__name__)

#: Called after every epoch with that epoch's metrics; returning True stops training.
Callback = Callable[[dict], bool | None]


def validation_metrics(model: BehaviourTransformer, sequences: SequenceArrays, batch_size: int = 1024,
                       filter_seen: bool = False) -> dict[str, float]:
    """HR@10 / NDCG@10 (and MRR, Recall) of each user's last item from the `max_len` events before it,
    through the one full-ranking path; with `filter_seen`, the items of that window are not candidates
    (the target excepted)."""
    was_training = model.training
    model.eval()
    starts, ends, targets = evaluation_cases(sequences, model.config.max_len)

    metrics = evaluate_next_item(model.score_histories, sequences.windows(starts, ends - starts), targets, model.n_items,
                                 batch_size=batch_size, filter_seen=filter_seen, ks=(10,), coverage=False)
    model.train(was_training)
    return {name: metrics[name] for name in ("hr@10", "ndcg@10", "mrr@10")}


class _PrivateRun:
    """A DP run's plan, each user's training windows, and the privacy spent so far."""

    def __init__(self, plan: DPPlan, windows: list[np.ndarray], model: BehaviourTransformer) -> None:
        from opacus.accountants import RDPAccountant

        self.plan, self.windows, self.accountant = plan, windows, RDPAccountant()
        self.clipped_gradients = UserClippedGradients(model, plan.max_grad_norm)

    def epsilon_spent(self) -> float:
        return float(self.accountant.get_epsilon(self.plan.delta)) if self.accountant.history else 0.0


class Trainer:
    """Fits a `BehaviourTransformer` on CSR sequences; keeps the best validation checkpoint.

    After `fit`: `history_` (one metrics dict per epoch), `best_epoch_`, `best_score_`
    (validation NDCG@10) and the model restored to its best weights. `known_items` (bool, n_items)
    says which items have trained id vectors; default: those in `train`. In a data-parallel run
    every rank ends with rank 0's best weights and history.
    """

    def __init__(
        self,
        model: BehaviourTransformer,
        config: TrainConfig | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: str | Path | None = None,
        metrics_path: str | Path | None = None,
        known_items: np.ndarray | None = None,
    ) -> None:
        self.model, self.config, self.known_items = model, config or TrainConfig(), known_items
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.metrics_path = Path(metrics_path) if metrics_path else None

    # ----------------------------------------------------------------------------- state

    _dp: _PrivateRun | None = None

    def _reset_state(self) -> None:
        self.history_: list[dict] = []
        self.best_epoch_, self.best_score_ = 0, -math.inf
        self._best_weights: dict[str, torch.Tensor] = {}
        self._epoch, self._step = 0, 0

    def save_checkpoint(self, path: str | Path) -> None:
        """Model, optimiser and progress as plain tensors and numbers (loadable with weights_only)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_model": self._best_weights,
            "epoch": self._epoch,
            "step": self._step,
            "best_epoch": self.best_epoch_,
            "best_score": self.best_score_,
            "history": self.history_,
        }
        tmp = Path(path).with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)  # never leave a half-written checkpoint behind

    def _read_checkpoint(self) -> dict | None:
        """The saved state, read by rank 0 only and handed to the others (their disk may lack it)."""
        path = self.checkpoint_path
        exists = self._ranks.is_main and path is not None and path.exists()
        return self._ranks.from_main(torch.load(path, weights_only=True) if exists else None)

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._best_weights = state["best_model"]
        self._epoch, self._step = state["epoch"], state["step"]
        self.best_epoch_, self.best_score_ = state["best_epoch"], state["best_score"]
        self.history_ = state["history"]

    # ----------------------------------------------------------------------------- loop

    def fit(self, train: SequenceArrays, valid: SequenceArrays | None = None, *, resume: bool = False) -> Trainer:
        """Trains on `train`; validates on `valid` (each user's last item is the target).

        With `resume` and an existing `checkpoint_path`, continues from the saved epoch.
        """
        self._ranks = process_ranks()
        with torch_threads(self._ranks.threads(self.config)):
            self._fit(train, valid, resume)
        return self

    def _fit(self, train: SequenceArrays, valid: SequenceArrays | None, resume: bool) -> None:
        cfg, model = self.config, self.model
        torch.manual_seed(cfg.seed)  # the same seed gives the same run from here on
        counts = train.item_counts(model.n_items)
        model.item_encoder.mark_known_items(torch.from_numpy(counts > 0 if self.known_items is None else self.known_items))
        self._generator = torch.Generator().manual_seed(cfg.seed)
        self.loss_fn = build_loss(model.config, model.n_items, counts, self._generator)
        causal = model.config.objective == "causal"
        starts, ends = training_windows(train, model.config.max_len + (1 if causal else 0))
        self.steps_per_epoch = max(1, math.ceil(len(starts) / cfg.batch_size))
        self.privacy_: dict | None = None
        if cfg.dp_epsilon is not None:
            if self._ranks.distributed:
                raise ConfigError("differentially private training runs in one process: start it without torchrun or Ray")
            self._plan_privacy(train, starts)
        self.optimizer = self._make_optimizer()
        self._reset_state()
        state = self._read_checkpoint() if resume else None
        if state is not None:
            if self._dp is not None:
                raise ConfigError("a differentially private run cannot be resumed: its privacy accounting would start over")
            self._restore(state)
            logger.info("resumed from %s after epoch %d", self.checkpoint_path, self._epoch)
        self._forward = self._ranks.wrap(model)  # after restoring: wrapping copies rank 0's weights to all
        started = time.perf_counter()
        total = cfg.epochs * self.steps_per_epoch
        quiet = not cfg.progress or not self._ranks.is_main
        with tqdm(total=total, initial=self._step, disable=quiet, unit="step", desc="training") as bar:
            while self._epoch < cfg.epochs:
                epoch_started = time.perf_counter()
                loss = (self._train_epoch_dp(train, starts, ends, bar) if self._dp is not None
                        else self._train_epoch(train, starts, ends, bar))
                self._epoch += 1
                metrics = self._end_epoch(loss, valid, time.perf_counter() - epoch_started)
                bar.set_postfix(loss=f"{loss:.3f}", best_ndcg=f"{max(self.best_score_, 0):.4f}")
                if self._should_stop(metrics, time.perf_counter() - started):
                    break
        if self._dp is not None:  # picking the best epoch on validation would spend privacy: keep the last
            self._dp.clipped_gradients.close()
            self.privacy_ = {**self._dp.plan.as_dict(), "epsilon_spent": self._dp.epsilon_spent(), "epochs": self._epoch}
        elif self._best_weights:
            model.load_state_dict(self._best_weights)
        self._share_outcome()
        model.eval()

    def _share_outcome(self) -> None:
        """Rank 0's best weights and history on every rank (only rank 0 validated)."""
        ranks = self._ranks
        ranks.share_weights(self.model)
        self.history_, self.best_epoch_, self.best_score_ = ranks.from_main((self.history_, self.best_epoch_, self.best_score_))

    def _plan_privacy(self, train: SequenceArrays, starts: np.ndarray) -> None:
        cfg = self.config
        owner = np.searchsorted(train.offsets, starts, side="right") - 1  # the user row of every window
        users, window_rows = np.unique(owner, return_inverse=True)
        plan = plan_dp(cfg.dp_epsilon, cfg.dp_delta, len(users), cfg.dp_users_per_step, cfg.epochs, cfg.dp_max_grad_norm)
        order = np.argsort(window_rows, kind="stable")
        bounds = np.searchsorted(window_rows[order], np.arange(len(users) + 1))
        self._dp = _PrivateRun(plan, [order[bounds[u]:bounds[u + 1]] for u in range(len(users))], self.model)
        self.steps_per_epoch = math.ceil(1.0 / plan.sample_rate)
        logger.info("user-level DP: epsilon %.2f at delta %.2g, noise multiplier %.3f, %d users, %.4f sampled per step",
                    plan.epsilon, plan.delta, plan.noise_multiplier, len(users), plan.sample_rate)

    def _train_epoch_dp(self, train: SequenceArrays, starts: np.ndarray, ends: np.ndarray, bar: tqdm) -> float:
        cfg, dp = self.config, self._dp
        # Sampling and noise from OS entropy, never from the seed: whoever knows the config (and, as
        # DP assumes, everyone else's data) could otherwise replay the run with and without a user.
        rng = np.random.default_rng()
        noise = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
        torch.manual_seed(cfg.seed * 1_000_003 + self._epoch)  # dropout, as in `_train_epoch`
        self.model.train()
        parameters = dp.clipped_gradients.parameters
        losses = []
        for users in sampled_users(len(dp.windows), dp.plan.sample_rate, self.steps_per_epoch, rng):
            for group in self.optimizer.param_groups:
                group["lr"] = self._learning_rate(self._step)
            if len(users):
                rows = one_window_each(dp.windows, users, rng)
                sums, user_losses = dp.clipped_gradients(gather_windows(train, starts[rows], ends[rows]))
                losses.append(float(user_losses.mean()))
            else:  # nobody sampled: the step is noise alone, as the accountant assumes
                sums = [torch.zeros_like(p) for p in parameters]
            noisy = noisy_mean(sums, dp.plan, len(dp.windows), noise)
            for p, g in zip(parameters, dp.clipped_gradients.release(noisy)):
                p.grad = g
            self.optimizer.step()
            dp.accountant.step(noise_multiplier=dp.plan.noise_multiplier, sample_rate=dp.plan.sample_rate)
            self._step += 1
            bar.update(1)
        return float(np.mean(losses)) if losses else 0.0

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # Why no decay on norms, biases and embeddings: decaying embeddings shrinks rare items'
        # vectors towards zero, which ranks them by norm rather than by fit.
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            is_matrix = parameter.dim() >= 2 and "embedding" not in name
            (decay if is_matrix else no_decay).append(parameter)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.config.lr)

    def _learning_rate(self, step: int) -> float:
        cfg = self.config
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return cfg.lr
        total = max(1, cfg.epochs * self.steps_per_epoch - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / total)
        floor = cfg.min_lr_ratio
        return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _train_epoch(self, train: SequenceArrays, starts: np.ndarray, ends: np.ndarray, bar: tqdm) -> float:
        cfg = self.config
        # Epoch randomness from (seed, epoch) alone: a resumed run replays the same epochs.
        # Every rank draws the same batches; dropout differs between ranks as it does between rows.
        ranks = self._ranks
        rng = np.random.default_rng([cfg.seed, self._epoch])
        torch.manual_seed(cfg.seed * 1_000_003 + self._epoch + 7_919 * ranks.rank)
        self._generator.manual_seed(cfg.seed * 1_000_003 + self._epoch)
        self.model.train()
        total, batches = 0.0, 0
        for batch, own in window_batches(train, starts, ends, cfg.batch_size, rng, rank=ranks.rank, world_size=ranks.world_size):
            for group in self.optimizer.param_groups:
                group["lr"] = self._learning_rate(self._step)
            loss, targets = self._batch_loss(batch)
            loss, part = ranks.weighted(loss, targets if own else 0)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self._step += 1
            total, batches = total + part, batches + 1
            bar.update(1)
        return ranks.sum(total) / max(batches, 1)

    def _batch_loss(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """The batch's mean loss and the number of targets it averages over."""
        model, forward = self.model, self._forward
        if model.config.objective == "causal":
            inputs, targets = next_item_targets(batch.items)
            event_types = None if batch.event_types is None else batch.event_types[:, :-1]
            timestamps = None if batch.timestamps is None else batch.timestamps[:, :-1]
            hidden = forward(inputs, event_types, timestamps)
        else:
            masked, targets = mask_items(batch.items, model.config.mask_probability, self._generator)
            hidden = forward(batch.items, batch.event_types, batch.timestamps, masked)
        return self.loss_fn(model, hidden, targets), int((targets >= FIRST_CODE).sum())

    def _end_epoch(self, loss: float, valid: SequenceArrays | None, seconds: float) -> dict:
        metrics: dict = {"epoch": self._epoch, "loss": loss, "seconds": round(seconds, 3)}
        if not self._ranks.is_main:
            return metrics
        validate = valid is not None and (self._epoch % self.config.eval_every == 0 or self._epoch == self.config.epochs)
        if validate:
            scores = validation_metrics(self.model, valid, self.config.eval_batch_size, filter_seen=self.config.filter_seen)
            metrics.update({f"valid_{name}": value for name, value in scores.items()})
            if scores["ndcg@10"] > self.best_score_:
                self.best_epoch_, self.best_score_ = self._epoch, scores["ndcg@10"]
                self._best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.history_.append(metrics)
        line = json.dumps(metrics)
        logger.info(line)
        if self.metrics_path is not None:
            with self.metrics_path.open("a") as out:
                out.write(line + "\n")
        if self.checkpoint_path is not None:
            self.save_checkpoint(self.checkpoint_path)
        return metrics

    def _should_stop(self, metrics: dict, elapsed: float) -> bool:
        """Rank 0's decision, the same on every rank."""
        return bool(self._ranks.from_main(self._main_should_stop(metrics, elapsed) if self._ranks.is_main else None))

    def _main_should_stop(self, metrics: dict, elapsed: float) -> bool:
        stop = False
        for callback in self.callbacks:
            stop = bool(callback(metrics)) or stop
        # A DP run trains its planned epochs: stopping on validation would be a choice made on private data.
        if self._dp is None and self.best_score_ > -math.inf and self._epoch - self.best_epoch_ >= self.config.patience:
            logger.info("early stop: no validation gain for %d epochs", self._epoch - self.best_epoch_)
            stop = True
        budget = self.config.max_minutes
        # Stop before an epoch that would overrun the budget, judging by the last epoch's length.
        if budget is not None and elapsed + metrics["seconds"] > budget * 60:
            logger.info("time budget of %.1f minutes reached", budget)
            stop = True
        return stop
