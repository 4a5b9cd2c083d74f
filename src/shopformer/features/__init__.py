"""Item features: the per-item table (attributes, brand, category, price bucket, text) and the
cached text encoder behind its text embeddings."""

from shopformer.features.items import (
    ItemFeatures,
    ItemVocabularies,
    build_item_features,
)
from shopformer.features.text import DEFAULT_TEXT_MODEL, TextEncoder, default_cache_dir

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "ItemFeatures",
    "ItemVocabularies",
    "TextEncoder",
    "build_item_features",
    "default_cache_dir",
]
