"""Nearest item vectors by cosine similarity: exact matrix products, or an ANN index for big catalogs.

Below `ANN_THRESHOLD` items an exact `(n_items, dim) @ (dim,)` product is faster than any index and
has no recall loss. Above it, with the `ann` extra installed, a usearch HNSW index answers instead.
"""

from __future__ import annotations

import logging

import numpy as np

from shopformer.errors import ShopformerError

__all__ = ["ANN_THRESHOLD", "VectorIndex"]

logger = logging.getLogger(__name__)

#: Catalog size from which the ANN index is used (when installed).
ANN_THRESHOLD = 100_000
_ANN_HINT = "pip install 'shopformer[ann]'"


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class VectorIndex:
    """Cosine nearest neighbours among the rows of `vectors` where `usable` is True.

    Rows keep their item codes: results are codes, never positions of a filtered copy.
    """

    def __init__(self, vectors: np.ndarray, usable: np.ndarray, *, ann: bool | None = None) -> None:
        self.vectors = _normalised(np.asarray(vectors, dtype=np.float32))
        self.usable = np.asarray(usable, dtype=bool)
        self.codes = np.flatnonzero(self.usable)
        wants_ann = len(self.codes) >= ANN_THRESHOLD if ann is None else ann
        self._ann = _build_ann(self.vectors[self.codes], strict=ann is True) if wants_ann else None

    @property
    def kind(self) -> str:
        return "usearch-hnsw" if self._ann is not None else "exact"

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(codes, cosine similarities) of the `k` rows nearest to `query`, best first."""
        query = _normalised(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        excluded = np.zeros(0, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        if self._ann is not None:
            return self._search_ann(query, k, excluded)
        scores = self.vectors @ query
        scores[~self.usable] = -np.inf
        scores[excluded] = -np.inf
        return top_k(scores, k)

    def scores(self, query: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Cosine similarity of `query` to the rows `codes`."""
        query = _normalised(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        return self.vectors[codes] @ query

    def _search_ann(self, query: np.ndarray, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        matches = self._ann.search(query, min(k + len(excluded), len(self.codes)))
        codes = self.codes[np.asarray(matches.keys, dtype=np.int64)]
        similarity = 1.0 - np.asarray(matches.distances, dtype=np.float32)  # usearch "cos" is a distance
        keep = ~np.isin(codes, excluded)
        return codes[keep][:k], similarity[keep][:k]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the `k` largest finite scores of a 1-D array, best first."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return order.astype(np.int64), scores[order].astype(np.float32)


def _build_ann(vectors: np.ndarray, *, strict: bool):
    try:
        from usearch.index import Index
    except ImportError:
        if strict:
            raise ShopformerError(f"an ANN index needs usearch: {_ANN_HINT}") from None
        logger.warning("%d items: install the ANN index for faster similar-item search (%s)", len(vectors), _ANN_HINT)
        return None
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(len(vectors)), vectors)
    return index
