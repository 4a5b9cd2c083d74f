"""Typed configuration of the behaviour Transformer: architecture, objective and count-prior weights.

Strict like every config (`shopformer.config.StrictConfig`): a misspelt key is an error. Sizes that
come from the data (number of items, event types, attributes) are not config: the model reads them
from the item table it is built on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shopformer.config import StrictConfig

__all__ = ["ModelConfig"]


class ModelConfig(StrictConfig):
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
