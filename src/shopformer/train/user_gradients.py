"""Per-user clipped gradients of the behaviour Transformer in one batched pass (DP-SGD's inner step).

Each sampled user contributes one training window; their gradient is clipped to norm C and the
clipped gradients are summed. Nothing is computed user by user:

* Sequence encoder: per-sample gradients from Opacus's hooks on the batched forward/backward.
* Item table T (n_items x dim): user i's gradient of T is A_i^T B_i, one row pair per target
  position t (a_t = softmax_t - onehot(target_t), b_t = hidden_t) and per input position s
  (a_s = onehot(item_s), b_s = the gradient of its input vector). The item encoder is linear in
  its parameters (id, attribute and price embeddings, summed), so the squared norm of each part's
  gradient is sum((A F A^T) * (B B^T)) for the part's feature matrix F (identity for ids, the
  item-to-attribute weights for attributes): a (positions x positions) Gram per user, never the
  (users x catalog x dim) per-user gradients. The clipped sum of T's gradient is one product, and
  one backward through the item encoder turns it into its parameters' gradients.

Where the catalog has public item features (text, attributes, price), private runs represent items
by those alone: an id vector per item would take noise in (catalog x dim) coordinates while each
holds the signal of a few users. The text projection is trained within the span of the catalog
text's top `dim` principal directions (public data, fixed before training): its per-user norm then
costs one (positions x catalog x dim) product, like the output layer, rather than x text-dim.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from shopformer.data.codes import FIRST_CODE, PADDING_CODE
from shopformer.errors import ConfigError
from shopformer.models.inputs import Batch
from shopformer.models.transformer import BehaviourTransformer, ItemEncoder
from shopformer.train.objectives import next_item_targets

__all__ = ["UserClippedGradients", "check_private_model"]

#: Target positions per chunk: bounds the (positions x catalog) softmax held at once.
CHUNK_POSITIONS = 4096


def check_private_model(model: BehaviourTransformer) -> None:
    """Refuses settings the per-user gradient computation does not cover, naming the key to change."""
    cfg = model.config
    wrong = {"model.objective": (cfg.objective, "causal"), "model.loss": (cfg.loss, "full"),
             "model.fusion": (cfg.fusion, "sum"), "model.item_norm": (cfg.item_norm, False),
             "model.label_smoothing": (cfg.label_smoothing, 0.0)}
    for key, (value, needed) in wrong.items():
        if value != needed:
            raise ConfigError(f"differentially private training needs {key} = {needed!r} (got {value!r})")


class _FeaturePart:
    """One summed part of the item encoder: item code -> weighted columns of an embedding table."""

    def __init__(self, index: Tensor, weight: Tensor, n_columns: int) -> None:
        self.index, self.weight, self.n_columns = index, weight, n_columns
        catalog_index, catalog_weight = index[FIRST_CODE:].flatten(), weight[FIRST_CODE:].flatten()
        catalog_rows = torch.arange(index.shape[0] - FIRST_CODE).repeat_interleave(index.shape[1])
        keep = catalog_weight > 0
        with warnings.catch_warnings():  # sparse CSR is marked beta; its product is all that is used
            warnings.simplefilter("ignore")
            # F's catalog rows, transposed (columns x catalog items), for softmax rows times F.
            coo = torch.sparse_coo_tensor(torch.stack([catalog_index[keep], catalog_rows[keep]]), catalog_weight[keep],
                                          (n_columns, index.shape[0] - FIRST_CODE))
            self.transposed = coo.coalesce().to_sparse_csr()

    def rows(self, codes: Tensor) -> Tensor:
        """Feature rows F[codes] (len(codes), n_columns)."""
        out = torch.zeros(len(codes), self.n_columns)
        return out.scatter_add_(1, self.index[codes], self.weight[codes])

    def project(self, dense: Tensor) -> Tensor:
        """dense (rows, catalog items) times F's catalog rows -> (rows, n_columns)."""
        return (self.transposed @ dense.T).T


class _DenseFeature:
    """A dense part: item code -> a row of `matrix` (the text features in their principal basis)."""

    def __init__(self, matrix: Tensor) -> None:
        self.matrix, self.n_columns = matrix, matrix.shape[1]

    def rows(self, codes: Tensor) -> Tensor:
        return self.matrix[codes]

    def project(self, dense: Tensor) -> Tensor:
        return dense @ self.matrix[FIRST_CODE:]


def _feature_parts(encoder: ItemEncoder) -> list[_FeaturePart]:
    parts = []
    if encoder.attribute_embedding is not None:
        index = encoder.attribute_index
        present = (index > 0).float()
        weight = present / present.sum(1, keepdim=True).clamp(min=1.0)  # the mean over present attributes
        parts.append(_FeaturePart(index, weight, encoder.attribute_embedding.num_embeddings))
    if encoder.price_embedding is not None:
        index = encoder.price_bucket[:, None]
        parts.append(_FeaturePart(index, (index > 0).float(), encoder.price_embedding.num_embeddings))
    return parts


def _text_basis(text: Tensor, rank: int) -> Tensor:
    """(text-dim, rank) orthonormal top principal directions of the item text vectors."""
    _, vectors = torch.linalg.eigh(text.double().T @ text.double())
    return vectors[:, -rank:].flip(1).float()


class UserClippedGradients:
    """Sum of per-user gradients, each clipped to `max_norm`, for batches of one window per user.

    Attaches Opacus's per-sample hooks to the model's sequence encoder; `close()` removes them.
    """

    def __init__(self, model: BehaviourTransformer, max_norm: float) -> None:
        from opacus.grad_sample import GradSampleModule

        check_private_model(model)
        self.model, self.max_norm = model, max_norm
        encoder = model.item_encoder
        self.parts: list[_FeaturePart | _DenseFeature] = _feature_parts(encoder)
        self.text_basis: Tensor | None = None
        if encoder.text_projection is not None:
            self.text_basis = _text_basis(encoder.text, min(model.config.dim, encoder.text.shape[1]))
            with torch.no_grad():  # the projection starts inside the span; its updates are released only there
                encoder.text_projection.weight.copy_(self.restricted(encoder.text_projection.weight))
            self.parts.append(_DenseFeature(encoder.text @ self.text_basis))
        self.item_ids = not self.parts  # ids only where the catalog has nothing public to describe items
        # Which items were trained on is not private output: with ids, every catalog item counts as known.
        encoder.mark_known_items(torch.full((encoder.n_items,), self.item_ids))
        if not self.item_ids:
            encoder.id_embedding.requires_grad_(False)
        with warnings.catch_warnings():  # Opacus warns about modules it sees for the first time
            warnings.simplefilter("ignore")
            self.sequence = GradSampleModule(model.sequence_encoder, batch_first=True, loss_reduction="sum")
        self.parameters = [p for p in model.parameters() if p.requires_grad]

    def restricted(self, gradient: Tensor) -> Tensor:
        """A text-projection weight or gradient (dim x text-dim) projected onto the principal span."""
        return gradient @ self.text_basis @ self.text_basis.T

    def release(self, noisy: list[Tensor]) -> list[Tensor]:
        """The private gradients as they may be applied: the text projection's kept inside the span
        that its clipping measured (post-processing of the noisy sum: no privacy cost)."""
        text = self.model.item_encoder.text_projection
        return [self.restricted(g) if text is not None and p is text.weight else g for p, g in zip(self.parameters, noisy)]

    def close(self) -> None:
        self.sequence._close()

    def __call__(self, batch: Batch) -> tuple[list[Tensor], Tensor]:
        """(clipped gradient sum per trainable parameter, each user's loss) of a batch of users."""
        table = self.model.item_encoder()
        table_gradient = torch.zeros_like(table)
        sums = {p: torch.zeros_like(p) for p in self.model.sequence_encoder.parameters() if p.requires_grad}
        losses = []
        for rows in self._chunks(batch.items):
            chunk = Batch(*(None if t is None else t[rows] for t in (batch.items, batch.event_types, batch.timestamps)))
            losses.append(self._chunk(chunk, table.detach(), table_gradient, sums))
        item_parameters = [p for p in self.model.item_encoder.parameters() if p.requires_grad]
        item_grads = torch.autograd.grad(table, item_parameters, table_gradient, allow_unused=True)
        by_parameter = dict(zip(item_parameters, item_grads)) | sums
        grads = [torch.zeros_like(p) if by_parameter.get(p) is None else by_parameter[p] for p in self.parameters]
        return grads, torch.cat(losses) if losses else torch.zeros(0)

    @staticmethod
    def _chunks(items: Tensor) -> list[Tensor]:
        """Rows sorted by window length, in chunks of at most CHUNK_POSITIONS padded positions."""
        lengths = (items != PADDING_CODE).sum(1)
        order = torch.argsort(lengths, descending=True)
        chunks, start = [], 0
        while start < len(order):
            size = max(1, CHUNK_POSITIONS // max(1, int(lengths[order[start]])))
            chunks.append(order[start:start + size])
            start += size
        return chunks

    def _chunk(self, batch: Batch, table: Tensor, table_gradient: Tensor, sums: dict[nn.Parameter, Tensor]) -> Tensor:
        length = int((batch.items != PADDING_CODE).sum(1).max())
        trim = [None if t is None else t[:, -length:] for t in (batch.items, batch.event_types, batch.timestamps)]
        inputs, targets = next_item_targets(trim[0])
        event_types, timestamps = (None if t is None else t[:, :-1] for t in trim[1:])
        valid = inputs != PADDING_CODE
        scale = self.model.config.dim**0.5
        vectors = (table[inputs] * scale).requires_grad_()
        hidden = self.sequence(vectors, valid, event_types, timestamps)
        with torch.no_grad():
            softmax_rows, losses = _softmax_rows(hidden.detach(), table[FIRST_CODE:], targets)
            cotangent = softmax_rows @ table[FIRST_CODE:]
        with warnings.catch_warnings():  # embedding lookups have no input gradient: Opacus's hooks still fire
            warnings.filterwarnings("ignore", message="Full backward hook")
            hidden.backward(cotangent)
        input_rows = vectors.grad * scale * valid.unsqueeze(-1)
        # A parameter this batch did not reach (time gaps without timestamps) has no per-sample gradient.
        used = [p for p in sums if p.grad_sample is not None]
        encoder_norms = sum((p.grad_sample.flatten(1).pow(2).sum(1) for p in used), torch.zeros(len(inputs)))
        with torch.no_grad():
            item_norms = self._item_norms(softmax_rows, hidden.detach(), inputs, targets >= FIRST_CODE, input_rows)
            # The margin covers float32 rounding in the Gram sums (relative error ~1e-6).
            factors = (self.max_norm * (1 - 1e-5) / (encoder_norms + item_norms).sqrt().clamp(min=1e-12)).clamp(max=1.0)
            for p in used:
                sums[p] += torch.einsum("b,b...->...", factors, p.grad_sample)
            self._add_table_gradient(table_gradient, softmax_rows, hidden.detach(), inputs, input_rows, factors)
        for p in sums:
            p.grad_sample, p.grad = None, None
        return losses

    def _item_norms(self, softmax_rows: Tensor, hidden: Tensor, inputs: Tensor, real: Tensor, input_rows: Tensor) -> Tensor:
        """Each user's squared gradient norm over the item encoder's parameters (exact); `real` marks
        the target positions."""
        valid = inputs != PADDING_CODE
        rows = torch.cat([hidden, input_rows], 1)  # b_r: (users, 2L, dim)
        gram_b = rows @ rows.transpose(1, 2)
        norms = torch.zeros(len(inputs))
        if self.item_ids:
            norms += (self._id_gram(softmax_rows, inputs, valid) * gram_b).sum((1, 2))
        users, length = inputs.shape
        for part in self.parts:
            targets_side = torch.zeros(users, length, part.n_columns)
            targets_side[real] = part.project(softmax_rows[real])
            inputs_side = part.rows(inputs.flatten()).reshape(users, length, -1) * valid.unsqueeze(-1)
            vectors = torch.cat([targets_side, inputs_side], 1)
            norms += ((vectors @ vectors.transpose(1, 2)) * gram_b).sum((1, 2))
        return norms

    def _id_gram(self, softmax_rows: Tensor, inputs: Tensor, valid: Tensor) -> Tensor:
        """Gram of the rows a_r under F = diag(known): target rows on the catalog codes, input rows on their item."""
        known = self.model.item_encoder.id_known
        codes = inputs.clamp(min=FIRST_CODE) - FIRST_CODE
        tt = (softmax_rows * known[FIRST_CODE:]) @ softmax_rows.transpose(1, 2)
        ts = softmax_rows.gather(2, codes[:, None, :].expand(-1, codes.shape[1], -1)) * (valid & (inputs >= FIRST_CODE))[:, None, :]
        ss = (inputs[:, :, None] == inputs[:, None, :]) & valid[:, :, None] & valid[:, None, :]
        ts, ss = ts * known[inputs][:, None, :], ss * known[inputs][:, :, None]
        return torch.cat([torch.cat([tt, ts], 2), torch.cat([ts.transpose(1, 2), ss.float()], 2)], 1)

    def _add_table_gradient(self, table_gradient: Tensor, softmax_rows: Tensor, hidden: Tensor, inputs: Tensor,
                            input_rows: Tensor, factors: Tensor) -> None:
        """table_gradient += sum over users of factor_i * A_i^T B_i."""
        dim = hidden.shape[-1]
        weighted = hidden * factors[:, None, None]  # the factor is per user: scaling b_t is the cheaper side
        table_gradient[FIRST_CODE:] += softmax_rows.reshape(-1, softmax_rows.shape[2]).T @ weighted.reshape(-1, dim)
        table_gradient.index_add_(0, inputs.flatten(), (input_rows * factors[:, None, None]).reshape(-1, dim))


def _softmax_rows(hidden: Tensor, catalog: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Per target position: w_t (softmax_t - onehot(target_t)) over the catalog, w_t = 1 / the user's
    target count (0 at padding); and each user's mean cross-entropy."""
    real = targets >= FIRST_CODE
    weights = real / real.sum(1, keepdim=True).clamp(min=1)
    log_probs = torch.log_softmax(hidden @ catalog.T, dim=-1)
    index = (targets.long() - FIRST_CODE).clamp(min=0).unsqueeze(-1)
    losses = -(log_probs.gather(2, index).squeeze(-1) * weights).sum(1)
    rows = log_probs.exp_()
    rows.scatter_add_(2, index, -torch.ones_like(index, dtype=rows.dtype))
    return rows.mul_(weights.unsqueeze(-1)), losses
