"""Behaviour Transformer: next-item prediction from a user's sequence of shop events.

Read against SASRec (Kang & McAuley, 2018) and BERT4Rec (Sun et al., 2019):

* `ItemEncoder` turns item codes into vectors. Besides the learned id embedding it can add the mean
  of the item's attribute embeddings (brand, categories), a price-bucket embedding and a linear
  projection of a frozen text embedding. Items without a trained id (cold start) keep a
  representation from their side features.
* `SequenceEncoder` is a pre-norm Transformer over (item + event type + time gap + position).
  Causal attention gives SASRec; bidirectional attention with a mask token gives BERT4Rec.
* `BehaviourTransformer` joins them. Scores for all items are `hidden @ item_table.T`, where the
  item table is the `ItemEncoder` applied to every item: the output embedding is tied to the input
  one, which is what lets side features reach items never seen as a training target.

Item codes: 0 pads, 1 is an unknown item, real items are 2..n_items-1. Sequences are left-padded,
so the most recent event is always the last column. No I/O here: arrays in, tensors out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shopformer.data.codes import FIRST_CODE, PADDING_CODE
from shopformer.errors import ConfigError
from shopformer.models.inputs import gather_windows

if TYPE_CHECKING:  # the model reads its config by attribute and needs nothing else from training
    from shopformer.data.sequences import SequenceArrays
    from shopformer.features.items import ItemFeatures
    from shopformer.models.config import ModelConfig

__all__ = ["BehaviourTransformer", "ItemEncoder", "SequenceEncoder", "time_gap_buckets"]


def time_gap_buckets(timestamps: Tensor, valid: Tensor, n_buckets: int) -> Tensor:
    """Bucket of the seconds since the previous event: 1 + floor(log2(1 + gap)), capped.

    Why log2: gaps range from seconds (same session) to months (returning shopper); equal-width
    buckets would spend almost all of them on the long tail. Bucket 0 means "no previous event".
    """
    gaps = (timestamps[:, 1:] - timestamps[:, :-1]).clamp(min=0).double()
    buckets = 1 + torch.floor(torch.log2(1.0 + gaps)).long().clamp(max=n_buckets - 2)
    has_previous = valid[:, 1:] & valid[:, :-1]
    first = torch.zeros_like(timestamps[:, :1], dtype=torch.long)  # also when the batch is one event wide
    return torch.cat([first, torch.where(has_previous, buckets, torch.zeros_like(buckets))], dim=1)


def _init_embedding(embedding: nn.Embedding, dim: int) -> None:
    nn.init.normal_(embedding.weight, std=dim**-0.5)
    if embedding.padding_idx is not None:
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()


class ItemEncoder(nn.Module):
    """Vector for each item code from its id and optional side features (fixed at construction).

    `attribute_index` (n_items, max_attrs) int, 0 = none; `price_bucket` (n_items,) int, 0 = unknown;
    `text` (n_items, d_text) float with `has_text` (n_items,) bool. Any of them may be None.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        *,
        attribute_index: Tensor | None = None,
        price_bucket: Tensor | None = None,
        text: Tensor | None = None,
        has_text: Tensor | None = None,
        fusion: str = "sum",
        item_norm: bool = True,
    ) -> None:
        super().__init__()
        self.n_items, self.fusion = n_items, fusion
        self.id_embedding = nn.Embedding(n_items, dim, padding_idx=PADDING_CODE)
        # 1 where the id embedding was trained; cold-start items get 0 and rely on side features.
        self.register_buffer("id_known", torch.ones(n_items))
        self.attribute_embedding = self.price_embedding = self.text_projection = None
        if attribute_index is not None:
            self._check_rows(attribute_index, "attribute_index")
            self.register_buffer("attribute_index", attribute_index.long(), persistent=False)
            n_attributes = int(attribute_index.max()) + 1
            self.attribute_embedding = nn.Embedding(n_attributes, dim, padding_idx=0)
        if price_bucket is not None:
            self._check_rows(price_bucket, "price_bucket")
            self.register_buffer("price_bucket", price_bucket.long(), persistent=False)
            self.price_embedding = nn.Embedding(int(price_bucket.max()) + 1, dim, padding_idx=0)
        if text is not None:
            self._check_rows(text, "text")
            mask = torch.ones(n_items, dtype=torch.bool) if has_text is None else has_text.bool()
            # Frozen features are inputs, not learned state: they stay out of checkpoints.
            self.register_buffer("text", text.float() * mask[:, None], persistent=False)
            self.text_projection = nn.Linear(text.shape[1], dim, bias=False)
        n_parts = 1 + sum(p is not None for p in (self.attribute_embedding, self.price_embedding, self.text_projection))
        self.gate = nn.Linear(n_parts * dim, n_parts) if fusion == "gated" and n_parts > 1 else None
        self.norm = nn.LayerNorm(dim) if item_norm else nn.Identity()
        # Item vectors start with norm ~1: against unit-variance hidden states (final LayerNorm)
        # the initial logits are ~N(0, 1), so the softmax over the catalog starts near uniform
        # instead of saturated (LayerNorm's default gain of 1 would give logits ~N(0, dim)).
        for embedding in (self.id_embedding, self.attribute_embedding, self.price_embedding):
            if embedding is not None:
                _init_embedding(embedding, dim)
        if item_norm:
            nn.init.constant_(self.norm.weight, dim**-0.5)

    def _check_rows(self, array: Tensor, name: str) -> None:
        if array.shape[0] != self.n_items:
            raise ConfigError(f"item feature '{name}' has {array.shape[0]} rows, expected one per item code ({self.n_items})")

    def mark_known_items(self, known: Tensor) -> None:
        """Keeps id embeddings only for `known` items (bool, n_items): the rest were never trained."""
        known = known.bool().clone()
        known[:FIRST_CODE] = True  # padding is zero anyway; the unknown-item vector is trained
        self.id_known.copy_(known.float())

    def _parts(self, codes: Tensor) -> list[Tensor]:
        parts = [self.id_embedding(codes) * self.id_known[codes].unsqueeze(-1)]
        if self.attribute_embedding is not None:
            attributes = self.attribute_index[codes]
            present = (attributes > 0).unsqueeze(-1).float()
            summed = (self.attribute_embedding(attributes) * present).sum(-2)
            parts.append(summed / present.sum(-2).clamp(min=1.0))
        if self.price_embedding is not None:
            parts.append(self.price_embedding(self.price_bucket[codes]))
        if self.text_projection is not None:
            parts.append(self.text_projection(self.text[codes]))
        return parts

    def forward(self, codes: Tensor | None = None) -> Tensor:
        """Representations of `codes` (any shape) → (..., dim); all items when `codes` is None."""
        if codes is None:
            codes = torch.arange(self.n_items, device=self.id_embedding.weight.device)
        parts = self._parts(codes)
        if self.gate is None:
            fused = torch.stack(parts).sum(0)
        else:
            # Per-item mixture weights: an item with a rare id can lean on its text, a popular one on
            # its id. Scaled by the number of parts so the gated sum starts at the plain sum's size.
            weights = torch.softmax(self.gate(torch.cat(parts, dim=-1)), dim=-1) * len(parts)
            fused = (torch.stack(parts, dim=-1) * weights.unsqueeze(-2)).sum(-1)
        return self.norm(fused)


class SelfAttention(nn.Module):
    """Multi-head self-attention over an explicit boolean mask (True = may attend)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        batch, length, dim = x.shape
        q, k, v = (t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2) for t in self.qkv(x).split(dim, -1))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, dim: int, heads: int, ffn_multiplier: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.norm_attention, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, attention_dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_multiplier * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_multiplier * dim, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        x = x + self.dropout(self.attention(self.norm_attention(x), allowed))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class SequenceEncoder(nn.Module):
    """Transformer over item vectors plus event-type, time-gap and position embeddings."""

    def __init__(self, config: ModelConfig, n_event_types: int = 0) -> None:
        super().__init__()
        dim = config.dim
        self.causal = config.objective == "causal"
        self.position = nn.Embedding(config.max_len, dim)
        self.event_type = nn.Embedding(n_event_types, dim, padding_idx=0) if n_event_types > 1 else None
        self.time_gap = nn.Embedding(config.time_gap_buckets, dim) if config.use_time_gaps else None
        self.n_time_buckets = config.time_gap_buckets
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(dim, config.heads, config.ffn_multiplier, config.dropout, config.attention_dropout)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(dim)
        for embedding in (self.position, self.event_type, self.time_gap):
            if embedding is not None:
                _init_embedding(embedding, dim)  # same scale as item vectors, none drowns the others

    def _attention_mask(self, valid: Tensor) -> Tensor:
        length = valid.shape[1]
        allowed = valid[:, None, None, :].expand(-1, 1, length, -1)
        if self.causal:
            allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
        # Every position may see itself, so a padding row is never fully masked (that would give NaN);
        # padding outputs are never read, and padding keys stay hidden from real positions.
        return allowed | torch.eye(length, dtype=torch.bool, device=valid.device)

    def forward(
        self,
        item_vectors: Tensor,
        valid: Tensor,
        event_types: Tensor | None = None,
        timestamps: Tensor | None = None,
        masked: Tensor | None = None,
    ) -> Tensor:
        """(batch, length, dim) item vectors of a left-padded batch → hidden states, same shape.

        At `masked` positions the event type and time gap are hidden too: at prediction time the
        next event's type and time are unknown, so training must not get to peek at them.
        """
        length = item_vectors.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_len {self.position.num_embeddings}")
        # Positions count back from the newest event: with left padding the most recent item always
        # gets position 0, whatever the batch's padded length, so batches can be trimmed freely.
        positions = torch.arange(length - 1, -1, -1, device=item_vectors.device)
        # Looked up per row (not broadcast) so per-sample gradient hooks see a batch dimension.
        x = item_vectors + self.position(positions.expand(item_vectors.shape[0], -1))
        if self.event_type is not None and event_types is not None:
            event_types = event_types.long()
            x = x + self.event_type(event_types if masked is None else event_types.masked_fill(masked, 0))
        if self.time_gap is not None and timestamps is not None:
            buckets = time_gap_buckets(timestamps, valid, self.n_time_buckets)
            x = x + self.time_gap(buckets if masked is None else buckets.masked_fill(masked, 0))
        x = self.dropout(x)
        allowed = self._attention_mask(valid)
        for block in self.blocks:
            x = block(x, allowed)
        return self.norm(x)


class BehaviourTransformer(nn.Module):
    """Item encoder + sequence encoder with a tied output embedding over all items.

    `n_event_types` counts event-type codes including padding (0) and unknown (1); 0 turns them off.
    Side features are used only when switched on in `config` (they may be passed and left unused).
    """

    def __init__(
        self,
        config: ModelConfig,
        n_items: int,
        n_event_types: int = 0,
        *,
        attribute_index: Tensor | None = None,
        price_bucket: Tensor | None = None,
        text: Tensor | None = None,
        has_text: Tensor | None = None,
    ) -> None:
        super().__init__()
        for flag, array in (("use_attributes", attribute_index), ("use_price", price_bucket), ("use_text", text)):
            if getattr(config, flag) and array is None:
                raise ConfigError(f"model.{flag} is on but no such item feature was given")
        self.config, self.n_items = config, n_items
        self.item_encoder = ItemEncoder(
            n_items,
            config.dim,
            attribute_index=attribute_index if config.use_attributes else None,
            price_bucket=price_bucket if config.use_price else None,
            text=text if config.use_text else None,
            has_text=has_text if config.use_text else None,
            fusion=config.fusion,
            item_norm=config.item_norm,
        )
        self.sequence_encoder = SequenceEncoder(config, n_event_types if config.use_event_types else 0)
        self.mask_vector = nn.Parameter(torch.randn(config.dim) * config.dim**-0.5) if config.objective == "masked" else None
        self._cached_table: Tensor | None = None
        self._cached_versions: tuple[int, ...] = ()

    @classmethod
    def for_items(cls, config: ModelConfig, features: ItemFeatures, n_event_types: int = 0) -> BehaviourTransformer:
        """A model over the rows of an item feature table (its side features, its text embeddings)."""
        text = torch.from_numpy(features.text) if features.text_dim else None
        return cls(
            config,
            features.n_items,
            n_event_types,
            attribute_index=torch.from_numpy(features.attribute_index),
            price_bucket=torch.from_numpy(features.price_bucket),
            text=text,
            has_text=torch.from_numpy(features.has_text) if text is not None else None,
        )

    def forward(
        self,
        items: Tensor,
        event_types: Tensor | None = None,
        timestamps: Tensor | None = None,
        masked: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (batch, length, dim) of left-padded `items` (batch, length).

        `masked` (bool, same shape) replaces those items by the mask token (masked objective only).
        """
        valid = items != PADDING_CODE
        # Item vectors are kept at norm ~1 for the output softmax; on the input side they are scaled
        # up by sqrt(dim) (as in the Transformer and SASRec) so the item identity dominates position
        # and type embeddings and survives dropout: without it training sits for epochs at the
        # popularity solution before it starts using the history.
        vectors = self.item_encoder(items) * self.config.dim**0.5
        if masked is not None:
            if self.mask_vector is None:
                raise ValueError("masked positions given to a model built with the causal objective")
            vectors = torch.where(masked.unsqueeze(-1), self.mask_vector.to(vectors.dtype), vectors)
            valid = valid | masked
        return self.sequence_encoder(vectors, valid, event_types, timestamps, masked)

    def item_table(self) -> Tensor:
        """Representations of all item codes (n_items, dim); computed once and cached in eval mode."""
        if self.training or torch.is_grad_enabled():
            return self.item_encoder()
        # Every in-place update of a parameter or buffer (an optimiser step, `mark_known_items`)
        # bumps its version counter, so a stale table is detected wherever the update happened.
        versions = tuple(t._version for t in (*self.item_encoder.parameters(), *self.item_encoder.buffers()))
        if self._cached_table is None or versions != self._cached_versions:
            self._cached_table, self._cached_versions = self.item_encoder(), versions
        return self._cached_table

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        self._cached_table = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def scores(self, hidden: Tensor) -> Tensor:
        """Scores (..., n_items) for every item; padding and unknown codes can never be recommended."""
        scores = hidden @ self.item_table().T
        scores[..., :FIRST_CODE] = -math.inf
        return scores

    def score_histories(self, histories: SequenceArrays) -> Tensor:
        """Scores (n, n_items) of the item after each history, from its last `max_len` events and the
        model alone: the scorer that full-ranking evaluation takes."""
        recent = histories.keep_last(self.config.max_len)
        batch = gather_windows(recent, recent.offsets[:-1], recent.offsets[1:])
        with torch.no_grad():
            return self.scores(self.next_item_hidden(batch.items, batch.event_types, batch.timestamps))

    def next_item_hidden(
        self, items: Tensor, event_types: Tensor | None = None, timestamps: Tensor | None = None
    ) -> Tensor:
        """(batch, dim) state that predicts the item after each left-padded history."""
        if self.mask_vector is None:
            return self(items, event_types, timestamps)[:, -1]
        # Masked objective (BERT4Rec): append a mask slot after the history and read its output.
        if items.shape[1] >= self.config.max_len:
            keep = self.config.max_len - 1
            items, event_types, timestamps = (
                None if t is None else t[:, -keep:] for t in (items, event_types, timestamps)
            )
        slot = torch.zeros_like(items[:, :1])
        masked = torch.cat([torch.zeros_like(items, dtype=torch.bool), torch.ones_like(slot, dtype=torch.bool)], 1)
        event_types = None if event_types is None else torch.cat([event_types, torch.zeros_like(event_types[:, :1])], 1)
        # The slot's event type and time gap are hidden by the mask; any timestamp fills the column.
        timestamps = None if timestamps is None else torch.cat([timestamps, timestamps[:, -1:]], 1)
        return self(torch.cat([items, slot], 1), event_types, timestamps, masked)[:, -1]
