"""Typed configuration of the behaviour Transformer and of its training loop.

Both configs are strict: an unknown or misspelt key is an error, never silently ignored, so a YAML
file or CLI override that says `--model.layer 4` fails loudly instead of training the default model.
Sizes that come from the data (number of items, event types, attributes) are not config: the
trainer and model read them from the arrays they are given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ModelConfig", "TrainConfig", "physical_cores"]


class _StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_StrictConfig):
    """Architecture and objective of the behaviour Transformer.

    Items are represented by id + attributes + price bucket + text embedding by default; the
    ids-only model is this same model with `use_text`, `use_attributes` and `use_price` off.
    """

    dim: int = Field(64, ge=8, description="width of item representations and hidden states")
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    max_len: int = Field(50, ge=2, description="most recent events the model looks at")
    ffn_multiplier: int = Field(1, ge=1, description="feed-forward width as a multiple of `dim`")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="dropout on embeddings and residual branches")
    attention_dropout: float = Field(0.3, ge=0.0, lt=1.0)
    use_event_types: bool = True
    use_time_gaps: bool = True
    time_gap_buckets: int = Field(32, ge=2, description="log2-spaced buckets of seconds between events")
    use_text: bool = True
    use_attributes: bool = True
    use_price: bool = True
    fusion: Literal["sum", "gated"] = "sum"
    # Off by default: a LayerNorm on the output table fixes every item vector's norm, which caps the
    # logit range; on Beauty the full softmax then stalls at the popularity solution (loss ~8.9).
    item_norm: bool = Field(False, description="LayerNorm on fused item representations")
    objective: Literal["causal", "masked"] = "causal"
    mask_probability: float = Field(0.2, gt=0.0, lt=1.0, description="share of items hidden in masked mode")
    loss: Literal["full", "sampled"] = "full"
    negatives: int = Field(1024, ge=1, description="shared negatives per batch for the sampled loss")
    negative_sampling: Literal["uniform", "popularity"] = "popularity"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    transition_weight: float | None = Field(
        None, ge=0.0, description="weight of the first-order transition prior in the scores; None: picked on validation, 0: off"
    )
    neighbour_weight: float | None = Field(
        None, ge=0.0, description="weight of the item co-occurrence (kNN) prior in the scores; None: picked on validation, 0: off"
    )

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> ModelConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        return self


def physical_cores() -> int:
    """Physical cores this process may use: extra hyper-threads slow dense maths down, not up."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except ImportError:
        physical = allowed
    return max(1, min(allowed, physical))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch runs on `n` threads inside the block and on as many as before after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TrainConfig(_StrictConfig):
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
