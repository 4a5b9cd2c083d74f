"""The item feature table: what the model knows about each item besides its id.

Rows are aligned to item codes (see `shopformer.data.prepare.LabelEncoder`): row `code` describes
the item whose code is `code`. Codes 0 (padding) and 1 (unknown item) are reserved and keep empty
features, so real items start at row 2.

Every categorical vocabulary here follows the same layout as item codes: 0 = none (no value, or
padding), 1 = a value unseen when the table was built (only in rows added by `extend`), and known
values from 2 on. Price buckets are 0 for an unknown price and 1..n_price_buckets otherwise.

Items that the catalog lacks get all-zero features and `has_text == False`. Items added after
training (`ItemFeatures.extend`) get attributes, price bucket and text through the same
vocabularies, so a trained model can place a cold-start item without an id embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.artifacts import read_header, write_header
from shopformer.data.codes import FIRST_CODE, PADDING_CODE
from shopformer.data.prepare import LabelEncoder
from shopformer.data.schema import CATALOG_COLUMNS, Catalog
from shopformer.errors import DataError, ShopformerError
from shopformer.features.text import TextEncoder

__all__ = ["ItemFeatures", "ItemVocabularies", "build_item_features"]

_ARRAYS_FILE = "item_features.npz"
_META_FILE = "item_features.json"
#: Category path separators found in shop exports ("Beauty > Makeup", "Beauty/Makeup", "a|b").
_CATEGORY_SEPARATOR = r"\s*(?:>|/|\|)\s*"
_PATH_JOINER = " > "
#: The text model reads about 256 word pieces; longer descriptions only cost hashing and tokenising.
_MAX_TEXT_CHARS = 2000
#: A free String column becomes attribute tokens only when values repeat across items (not ids/URLs).
_MAX_DISTINCT_SHARE = 0.5


@dataclass(frozen=True)
class ItemVocabularies:
    """Everything needed to encode more items exactly as the table's own items were encoded."""

    #: Attribute tokens ("category:Beauty > Makeup", "brand:Acme", "attr:matte", "colour:red");
    #: token `k` of the list has code `k + 2`. Same layout for `brands` and `categories`.
    attributes: list[str]
    brands: list[str]
    categories: list[str]
    #: Inner quantile edges of the price buckets (at most `n_price_buckets - 1` of them).
    price_edges: list[float]
    n_price_buckets: int
    max_attributes: int
    #: Catalog String columns turned into `column:value` attribute tokens.
    extra_columns: list[str] = field(default_factory=list)
    #: Canonical name of the text model, or None when the table has no text embeddings.
    text_model: str | None = None

    @property
    def n_attribute_codes(self) -> int:
        """Rows of an attribute embedding table (two reserved codes included); likewise below."""
        return len(self.attributes) + FIRST_CODE

    @property
    def n_brand_codes(self) -> int:
        return len(self.brands) + FIRST_CODE

    @property
    def n_category_codes(self) -> int:
        return len(self.categories) + FIRST_CODE

    @property
    def n_price_codes(self) -> int:
        return self.n_price_buckets + 1


@dataclass(frozen=True)
class ItemFeatures:
    """Per-item features aligned to item codes; row 0 is padding and row 1 the unknown item.

    Attributes:
        item_ids: `(n_items,)` raw ids; entries 0 and 1 are empty placeholders.
        attribute_index: `(n_items, max_attrs)` int32 attribute-token codes, 0-padded on the right.
        brand, category: `(n_items,)` int32 codes (category = full normalised path).
        price_bucket: `(n_items,)` int32 quantile bucket, 0 = unknown price.
        text: `(n_items, dim)` float32 L2-normalised text embeddings, zero rows where `has_text` is
            False; `dim` is 0 when the table was built without a text encoder.
        has_text: `(n_items,)` bool.
        vocabularies: the token lists and price edges behind the codes.
    """

    item_ids: np.ndarray
    attribute_index: np.ndarray
    brand: np.ndarray
    category: np.ndarray
    price_bucket: np.ndarray
    text: np.ndarray
    has_text: np.ndarray
    vocabularies: ItemVocabularies

    @property
    def n_items(self) -> int:
        """Number of rows, reserved rows included: the size of an item embedding table."""
        return len(self.item_ids)

    @property
    def text_dim(self) -> int:
        return self.text.shape[1]

    def codes(self, item_ids: Sequence[str]) -> np.ndarray:
        """int32 row of each id; ids not in the table get 1 (the unknown item)."""
        encoder = LabelEncoder.from_classes(self.item_ids[FIRST_CODE:].tolist())
        return encoder.transform(list(item_ids))

    def extend(
        self, item_ids: Sequence[str], catalog: Catalog | None, text_encoder: TextEncoder | None = None
    ) -> ItemFeatures:
        """A table with rows appended for `item_ids` (ids already present are skipped).

        New rows take codes `n_items, n_items + 1, ...` and are encoded with this table's
        vocabularies and price edges (tokens never seen before get code 1), so a model trained on
        this table reads them correctly. A table with text needs an encoder of the same model.
        """
        known = set(self.item_ids[FIRST_CODE:].tolist())
        new_ids = list(dict.fromkeys(i for i in item_ids if i not in known))
        if not new_ids:
            return self
        _check_text_model(self.vocabularies, text_encoder)
        return _concatenate(self, _encode_frame(_item_frame(new_ids, catalog), self.vocabularies, text_encoder))

    def save(self, directory: str | Path) -> Path:
        """Writes `item_features.npz` (arrays) and `item_features.json` (vocabularies); no pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAY_NAMES}
        np.savez(directory / _ARRAYS_FILE, **arrays)
        write_header(directory / _META_FILE, "item_features", vocabularies=self.vocabularies.__dict__)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ItemFeatures:
        """Reads a table written by `save`."""
        directory = Path(directory)
        meta = read_header(directory / _META_FILE, "item_features", what="saved item feature table")
        with np.load(directory / _ARRAYS_FILE, allow_pickle=False) as arrays:
            loaded = {name: arrays[name] for name in _ARRAY_NAMES}
        return cls(**loaded, vocabularies=ItemVocabularies(**meta["vocabularies"]))


_ARRAY_NAMES = ("item_ids", "attribute_index", "brand", "category", "price_bucket", "text", "has_text")


def build_item_features(
    item_ids: Sequence[str | None],
    catalog: Catalog | None,
    text_encoder: TextEncoder | None = None,
    n_price_buckets: int = 10,
    *,
    max_attributes: int = 32,
    extra_columns: Sequence[str] | None = None,
) -> ItemFeatures:
    """Builds the feature table of the items `item_ids`, learning its vocabularies from `catalog`.

    Args:
        item_ids: raw id of every item code: `item_ids[code]`. Entries 0 and 1 stand for the
            reserved padding and unknown codes and are ignored (pass anything, e.g. None);
            real items start at index 2, as `LabelEncoder` lays them out:
            `[None, None, *item_encoder.classes]`.
        catalog: item metadata; items it lacks (or no catalog at all) get empty features.
        text_encoder: embeds "title. description. category. brand"; None leaves `text` 0-wide.
        n_price_buckets: number of price quantile buckets over the items with a known price.
        max_attributes: most attribute tokens kept per item (category first, then brand, the
            `attributes` list and extra columns).
        extra_columns: catalog String columns to turn into `column:value` tokens; by default every
            column outside the standard ones whose values repeat across items.
    """
    if len(item_ids) < FIRST_CODE:
        raise ShopformerError("item_ids must hold the two reserved codes (0 and 1) before the real items")
    if n_price_buckets < 1 or max_attributes < 1:
        raise ShopformerError("n_price_buckets and max_attributes must be at least 1")
    real_ids = list(item_ids[FIRST_CODE:])
    if any(not isinstance(i, str) for i in real_ids):
        raise DataError("item ids from code 2 on must be strings", column="item_id", expected="str ids")
    frame = _item_frame(real_ids, catalog)
    columns = _extra_columns(frame, extra_columns)
    tokens = _attribute_tokens(frame, columns, max_attributes)
    vocabularies = ItemVocabularies(
        attributes=_fit(tokens.explode("tokens")["tokens"]),
        brands=_fit(frame["brand"]),
        categories=_fit(frame["category_path"]),
        price_edges=_price_edges(frame["price"].to_numpy(), n_price_buckets),
        n_price_buckets=n_price_buckets,
        max_attributes=max_attributes,
        extra_columns=columns,
        text_model=text_encoder.model_id if text_encoder is not None else None,
    )
    rows = _encode_frame(frame, vocabularies, text_encoder, tokens)
    return _concatenate(_reserved_rows(vocabularies, rows.text_dim), rows)


def _encode_frame(
    frame: pl.DataFrame,
    vocabularies: ItemVocabularies,
    encoder: TextEncoder | None,
    tokens: pl.DataFrame | None = None,
) -> ItemFeatures:
    """Features of the rows of `frame` (one per item, in order) with fixed vocabularies."""
    if tokens is None:
        tokens = _attribute_tokens(frame, vocabularies.extra_columns, vocabularies.max_attributes)
    text, has_text = _text_embeddings(frame, encoder)
    return ItemFeatures(
        item_ids=np.array(frame["item_id"].to_list(), dtype=str),
        attribute_index=_padded_codes(tokens, vocabularies.attributes, vocabularies.max_attributes),
        brand=_codes(frame["brand"], vocabularies.brands),
        category=_codes(frame["category_path"], vocabularies.categories),
        price_bucket=_price_buckets(frame["price"].to_numpy(), vocabularies.price_edges),
        text=text,
        has_text=has_text,
        vocabularies=vocabularies,
    )


def _item_frame(item_ids: list[str], catalog: Catalog | None) -> pl.DataFrame:
    """One row per id in order: the catalog's standard columns (null when unknown), cleaned."""
    ids = pl.DataFrame({"item_id": item_ids}, schema={"item_id": pl.String})
    if ids["item_id"].is_duplicated().any():
        duplicate = ids.filter(pl.col("item_id").is_duplicated())["item_id"][0]
        raise DataError("item ids must be distinct", column="item_id", expected="unique ids", found=duplicate)
    source = catalog.frame if catalog is not None else pl.DataFrame(schema={"item_id": pl.String})
    frame = ids.join(source, on="item_id", how="left", maintain_order="left")
    absent = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in CATALOG_COLUMNS.items() if name not in frame.columns]
    frame = frame.with_columns(absent)
    strings = ["title", "description", "category", "brand"]
    frame = frame.with_columns(pl.col(strings).str.replace_all(r"\s+", " ").str.strip_chars().replace("", None))
    return frame.with_columns(category_path=_normalised_path(pl.col("category")))


def _normalised_path(category: pl.Expr) -> pl.Expr:
    path = category.str.replace_all(_CATEGORY_SEPARATOR, _PATH_JOINER).str.strip_chars(" >")
    return path.replace("", None)


def _extra_columns(frame: pl.DataFrame, requested: Sequence[str] | None) -> list[str]:
    if requested is None:
        return _repeating_columns(frame)
    absent = [name for name in requested if name not in frame.columns]
    if absent:
        raise DataError("catalog lacks an attribute column", column=absent[0], expected="a catalog column")
    return list(requested)


def _repeating_columns(frame: pl.DataFrame) -> list[str]:
    extra = [name for name, dtype in frame.schema.items()
             if dtype == pl.String and name not in CATALOG_COLUMNS and name != "category_path"]
    limit = _MAX_DISTINCT_SHARE * max(frame.height, 1)
    return [name for name in extra if frame[name].n_unique() <= limit]


def _attribute_tokens(frame: pl.DataFrame, extra_columns: list[str], max_attributes: int) -> pl.DataFrame:
    """`tokens`: each item's distinct attribute tokens in a fixed order, at most `max_attributes`.

    Extra columns absent from `frame` count as missing values (a later catalog may lack them).
    """
    extras = [
        pl.concat_list(pl.format(f"{name}:{{}}", pl.col(name).cast(pl.String).str.strip_chars()))
        for name in extra_columns if name in frame.columns
    ]
    parts = [
        _category_prefixes(frame["category_path"]),
        pl.concat_list(pl.format("brand:{}", pl.col("brand"))),
        pl.col("attributes").list.eval(pl.format("attr:{}", pl.element().str.strip_chars())).fill_null([]),
        *extras,
    ]
    tokens = pl.concat_list(parts).list.drop_nulls().list.unique(maintain_order=True).list.head(max_attributes)
    return frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), tokens.alias("tokens"))


def _category_prefixes(paths: pl.Series) -> pl.Expr:
    """Each path's prefixes as tokens: "Beauty > Makeup" gives its parent "Beauty" too, so sibling
    leaves share a token and equal leaf names under different parents stay apart."""
    parts = pl.col("category_path").str.split(_PATH_JOINER)
    depth = int(paths.str.count_matches(_PATH_JOINER, literal=True).max() or 0) + 1
    # One expression per depth (paths are a few levels deep), each vectorised over all items.
    prefixes = [
        pl.when(parts.list.len() > level)
        .then(pl.format("category:{}", parts.list.head(level + 1).list.join(_PATH_JOINER)))
        for level in range(depth)
    ]
    return pl.concat_list(prefixes)


def _fit(values: pl.Series) -> list[str]:
    return LabelEncoder().fit(values).classes.to_list()


def _codes(values: pl.Series, vocabulary: list[str]) -> np.ndarray:
    """int32 codes; missing values get 0 (none), values outside the vocabulary 1 (unknown)."""
    codes = LabelEncoder.from_classes(vocabulary).transform(values)
    return np.where(values.is_null().to_numpy(), PADDING_CODE, codes).astype(np.int32)


def _padded_codes(tokens: pl.DataFrame, vocabulary: list[str], max_attributes: int) -> np.ndarray:
    long = tokens.explode("tokens").drop_nulls("tokens")
    long = long.with_columns(position=pl.int_range(pl.len(), dtype=pl.Int64).over("row"))
    width = int(long["position"].max() + 1) if long.height else 0
    matrix = np.zeros((tokens.height, min(width, max_attributes)), dtype=np.int32)
    matrix[long["row"].to_numpy(), long["position"].to_numpy()] = _codes(long["tokens"], vocabulary)
    return matrix


def _valid_prices(prices: np.ndarray) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    return np.isfinite(prices) & (prices >= 0)


def _price_edges(prices: np.ndarray, n_buckets: int) -> list[float]:
    known = np.asarray(prices, dtype=np.float64)[_valid_prices(prices)]
    if known.size == 0 or n_buckets == 1:
        return []
    # Repeated prices (9.99 everywhere) give repeated edges; dropping them merges those buckets.
    edges = np.unique(np.quantile(known, np.linspace(0.0, 1.0, n_buckets + 1)[1:-1]))
    return edges.tolist()


def _price_buckets(prices: np.ndarray, edges: list[float]) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    valid = _valid_prices(prices)
    buckets = np.searchsorted(np.asarray(edges, dtype=np.float64), np.where(valid, prices, 0.0), side="right") + 1
    return np.where(valid, buckets, 0).astype(np.int32)


def item_texts(frame: pl.DataFrame) -> pl.Series:
    """"title. description. category. brand" of each row, skipping missing parts ("" when none)."""
    parts = [pl.col(name).str.strip_chars_end(". ") for name in ("title", "description", "category", "brand")]
    text = pl.concat_str(parts, separator=". ", ignore_nulls=True).str.slice(0, _MAX_TEXT_CHARS)
    return frame.select(text.fill_null("").alias("text"))["text"]


def _text_embeddings(frame: pl.DataFrame, encoder: TextEncoder | None) -> tuple[np.ndarray, np.ndarray]:
    if encoder is None:
        return np.zeros((frame.height, 0), dtype=np.float32), np.zeros(frame.height, dtype=bool)
    texts = item_texts(frame)
    has_text = (texts.str.len_chars() > 0).to_numpy()
    vectors = encoder.encode(texts.filter(has_text).to_list()) if has_text.any() else None
    text = np.zeros((frame.height, encoder.dim), dtype=np.float32)
    if vectors is not None:
        text[has_text] = vectors
    return text, has_text


def _check_text_model(vocabularies: ItemVocabularies, encoder: TextEncoder | None) -> None:
    wanted = vocabularies.text_model
    given = encoder.model_id if encoder is not None else None
    if wanted is not None and given != wanted:
        raise ShopformerError(
            f"this item table embeds texts with '{wanted}': pass a TextEncoder of that model (got {given!r})"
        )


def _reserved_rows(vocabularies: ItemVocabularies, text_dim: int) -> ItemFeatures:
    return ItemFeatures(
        item_ids=np.array(["", ""], dtype=str),
        attribute_index=np.zeros((FIRST_CODE, 0), dtype=np.int32),
        brand=np.zeros(FIRST_CODE, dtype=np.int32),
        category=np.zeros(FIRST_CODE, dtype=np.int32),
        price_bucket=np.zeros(FIRST_CODE, dtype=np.int32),
        text=np.zeros((FIRST_CODE, text_dim), dtype=np.float32),
        has_text=np.zeros(FIRST_CODE, dtype=bool),
        vocabularies=vocabularies,
    )


def _concatenate(head: ItemFeatures, tail: ItemFeatures) -> ItemFeatures:
    """Rows of `head` then `tail`; attribute matrices are right-padded to the wider one."""
    width = max(head.attribute_index.shape[1], tail.attribute_index.shape[1])

    def pad(matrix: np.ndarray) -> np.ndarray:
        return np.pad(matrix, ((0, 0), (0, width - matrix.shape[1])))

    return replace(
        head,
        item_ids=np.concatenate([head.item_ids, tail.item_ids]),
        attribute_index=np.concatenate([pad(head.attribute_index), pad(tail.attribute_index)]),
        brand=np.concatenate([head.brand, tail.brand]),
        category=np.concatenate([head.category, tail.category]),
        price_bucket=np.concatenate([head.price_bucket, tail.price_bucket]),
        text=np.concatenate([head.text, tail.text]),
        has_text=np.concatenate([head.has_text, tail.has_text]),
    )
