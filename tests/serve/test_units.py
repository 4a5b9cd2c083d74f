"""The service's building blocks on their own: micro-batching, the event store, vector search, metrics."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest

from shopformer.errors import ShopformerError
from shopformer.serve.batching import MicroBatcher
from shopformer.serve.ingest import OPTIONAL_EVENT_FIELDS
from shopformer.serve.metrics import Metrics
from shopformer.serve.schemas import EventIn
from shopformer.serve.store import open_store, user_hash
from shopformer.serve.vectors import VectorIndex, top_k


def test_concurrent_submissions_share_batches_and_keep_their_results():
    calls: list[int] = []

    def double(items):
        calls.append(len(items))
        return [2 * item for item in items]

    async def scenario():
        batcher = MicroBatcher(double, ThreadPoolExecutor(1), max_batch=16, max_wait_s=0.002)
        batcher.start()
        lone = await batcher.submit(21)
        results = await asyncio.gather(*(batcher.submit(n) for n in range(40)))
        await batcher.stop()
        return lone, results

    lone, results = asyncio.run(scenario())
    assert lone == 42 and results == [2 * n for n in range(40)]
    assert calls[0] == 1 and max(calls) == 16 and len(calls) <= 5


def test_a_failing_batch_fails_its_requests_and_the_batcher_goes_on():
    def fragile(items):
        if -1 in items:
            raise ValueError("bad item")
        return items

    async def scenario():
        batcher = MicroBatcher(fragile, ThreadPoolExecutor(1))
        batcher.start()
        with pytest.raises(ValueError):
            await batcher.submit(-1)
        value = await batcher.submit(5)
        await batcher.stop()
        return value

    assert asyncio.run(scenario()) == 5


def _events(ids, user="u1"):
    n = len(ids)
    return pl.DataFrame({"event_id": ids, "user_id": [user] * n, "item_id": ["i1"] * n, "event_type": ["view"] * n,
                         "timestamp": list(range(n)), "quantity": [1.0] * n})


def test_store_is_durable_idempotent_and_forgets_by_hash(tmp_path):
    store = open_store(tmp_path / "events.sqlite")
    assert store.add(_events(["a", "b"])) == ["a", "b"]
    assert store.add(_events(["b", "c"])) == ["c"]
    assert [e["event_id"] for e in store.user_events("u1")] == ["a", "b", "c"]
    assert store.user_events("u1")[0]["quantity"] == 1.0
    pragmas = sqlite3.connect(tmp_path / "events.sqlite")
    assert pragmas.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.forget("u1") == 3 and store.user_events("u1") == [] and store.recent(50).is_empty()
    assert store.forgotten() == {user_hash("u1")} and "u1" not in str(store.forgotten())


def test_store_reads_each_users_newest_events_for_the_states(tmp_path):
    store = open_store(tmp_path / "events.sqlite")
    store.add(_events([f"a{i}" for i in range(5)], user="u1"))
    store.add(_events([f"b{i}" for i in range(2)], user="u2"))
    late_but_old = _events(["a-old"], user="u1").with_columns(pl.lit(-1, dtype=pl.Int64).alias("timestamp"))
    store.add(late_but_old)  # arrives last, happened first: not among u1's newest three
    recent = store.recent(3)
    assert sorted(recent.filter(pl.col("user_id") == "u1")["event_id"].to_list()) == ["a2", "a3", "a4"]
    assert recent.filter(pl.col("user_id") == "u2")["event_id"].to_list() == ["b0", "b1"]


def test_store_refuses_a_folder_and_a_file_that_is_not_sqlite(tmp_path):
    with pytest.raises(ShopformerError, match="folder"):
        open_store(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ShopformerError, match="cannot be opened"):
        open_store(junk)


def test_postgres_store_without_the_driver_gives_the_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name == "psycopg":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(ShopformerError, match=r"shopformer\[postgres\]"):
        open_store("postgresql://user@localhost/events")


def _vectors():
    vectors = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    usable = np.ones(2000, dtype=bool)
    usable[:2] = False  # reserved codes are never results
    return vectors, usable


def test_exact_search_finds_the_nearest_usable_items():
    vectors, usable = _vectors()
    codes, scores = VectorIndex(vectors, usable, ann=False).search(vectors[10], 10, exclude=np.array([10]))
    assert 10 not in codes and not set(codes) & {0, 1} and np.all(np.diff(scores) <= 0)
    brute = vectors @ vectors[10] / np.linalg.norm(vectors, axis=1) / np.linalg.norm(vectors[10])
    brute[[0, 1, 10]] = -np.inf
    assert codes[0] == int(np.argmax(brute))


def test_ann_search_agrees_with_exact_search():
    pytest.importorskip("usearch", reason="the ANN index is the optional `ann` extra")
    vectors, usable = _vectors()
    codes, scores = VectorIndex(vectors, usable, ann=False).search(vectors[10], 10, exclude=np.array([10]))
    ann = VectorIndex(vectors, usable, ann=True)
    ann_codes, ann_scores = ann.search(vectors[10], 10, exclude=np.array([10]))
    assert ann.kind == "usearch-hnsw" and len(set(codes) & set(ann_codes)) >= 8
    np.testing.assert_allclose(ann_scores[:3], scores[:3], atol=1e-3)


def test_top_k_skips_non_finite_scores():
    codes, values = top_k(np.array([0.5, -np.inf, 2.0, 1.0]), 10)
    assert codes.tolist() == [2, 3, 0] and values.tolist() == [2.0, 1.0, 0.5]


def test_metrics_histograms_are_cumulative():
    metrics = Metrics()
    for seconds in (0.0005, 0.003, 0.003, 3.0):
        metrics.observe_request("GET", "/x", 200, seconds)
    text = metrics.render()
    assert 'shopformer_request_seconds_bucket{method="GET",route="/x",le="0.001"} 1' in text
    assert 'shopformer_request_seconds_bucket{method="GET",route="/x",le="0.005"} 3' in text
    assert 'shopformer_request_seconds_count{method="GET",route="/x"} 4' in text


def test_request_schema_offers_exactly_the_optional_fields_that_ingestion_and_the_store_keep():
    required = {"event_id", "user_id", "item_id", "event_type", "timestamp"}
    assert set(EventIn.model_fields) - required == set(OPTIONAL_EVENT_FIELDS)
