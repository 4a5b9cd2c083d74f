"""Typed configuration of one training run: optimisation, early stopping, budget, threads.

Strict like every config (`shopformer.config.StrictConfig`): `--set train.epoch=4` is an error, not
the default run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shopformer.config import StrictConfig
from shopformer.runtime import physical_cores

__all__ = ["PRIVATE_DEFAULTS", "TrainConfig"]

#: Defaults of a private run where they differ from a normal one (explicit settings always win). A
#: private run's epochs fix its noise, so it is short; large batches of users and a higher rate make
#: the most of few noisy steps (chosen on Beauty's validation split at epsilon 3); it validates
#: only at the end, since it keeps its last epoch anyway.
PRIVATE_DEFAULTS: dict[str, Any] = {"epochs": 10, "lr": 1e-2, "warmup_steps": 5, "eval_every": 10}


class TrainConfig(StrictConfig):
    """Optimisation, early stopping and budget of one training run."""

    epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1, description="training sequences (windows) per step")
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(100, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="cosine schedule ends at lr * this")
    grad_clip: float | None = Field(5.0, gt=0.0)
    patience: int = Field(10, ge=1, description="epochs without validation gain before stopping")
    eval_every: int = Field(1, ge=1, description="epochs between validation runs")
    eval_batch_size: int = Field(1024, ge=1)
    filter_seen: bool = Field(True, description="validation leaves the user's history items out of the candidates")
    seed: int = 0
    num_threads: int = Field(default_factory=physical_cores, ge=1)
    max_minutes: float | None = Field(None, gt=0.0, description="wall-clock budget; stops after an epoch")
    progress: bool = True
    # User-level differential privacy (train.privacy): off unless dp_epsilon is set.
    dp_epsilon: float | None = Field(None, gt=0.0, description="train with user-level DP-SGD to this epsilon")
    dp_delta: float | None = Field(None, gt=0.0, lt=1.0, description="DP delta; None: 1 / number of users")
    dp_max_grad_norm: float = Field(1.0, gt=0.0, description="per-user gradient clipping norm C")
    dp_users_per_step: int = Field(4096, ge=1, description="expected users per DP step (Poisson sampling)")

    @model_validator(mode="before")
    @classmethod
    def _private_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("dp_epsilon") is not None:
            return PRIVATE_DEFAULTS | data
        return data
