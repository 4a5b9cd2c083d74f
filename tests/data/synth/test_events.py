"""The synthetic event log: its size, its shape, determinism, and chunk-by-chunk writing."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.synth.events import EVENT_SHARES, EVENT_TYPES, SyntheticEvents, write_synthetic_events
from shopformer.errors import ConfigError


def test_chunks_add_up_to_the_log_and_each_is_in_time_order():
    log = SyntheticEvents(50_000, seed=2, chunk_events=12_000)
    chunks = list(log.chunks())
    assert sum(c.height for c in chunks) == 50_000 and 4 <= len(chunks) <= 6
    assert all(c["timestamp"].is_sorted() for c in chunks)
    # Users are dealt out in blocks: no user is in two chunks.
    users = [set(c["user_id"].unique()) for c in chunks]
    assert sum(len(u) for u in users) == len(set().union(*users))
    assert chunks[0].schema == pl.Schema({"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "event_type": pl.String})


def test_the_same_parameters_give_the_same_rows_and_another_seed_other_rows():
    assert SyntheticEvents(5000, seed=1).frame().equals(SyntheticEvents(5000, seed=1).frame())
    assert not SyntheticEvents(5000, seed=1).frame().equals(SyntheticEvents(5000, seed=2).frame())


def test_the_log_looks_like_a_shop():
    frame = SyntheticEvents(200_000, seed=0).frame()
    shares = frame["event_type"].value_counts(normalize=True)
    observed = dict(zip(shares["event_type"], shares["proportion"]))
    assert observed == pytest.approx(dict(zip(EVENT_TYPES, EVENT_SHARES)), abs=0.01)
    # Zipf items: the top 1% of items draw a large share of events; users are skewed too.
    per_item = frame["item_id"].value_counts()["count"].sort(descending=True).to_numpy()
    assert per_item[: len(per_item) // 100].sum() / per_item.sum() > 0.25
    per_user = frame["user_id"].value_counts()["count"].to_numpy()
    assert np.percentile(per_user, 90) > 2 * np.median(per_user)
    # About 10% reloads: the same user's previous event had the same item.
    by_user = frame.sort("user_id", "timestamp", maintain_order=True)
    same = [pl.col(c) == pl.col(c).shift() for c in ("user_id", "item_id")]
    reloads = by_user.select((same[0] & same[1]).mean()).item()
    assert 0.08 < reloads < 0.15


def test_writing_gives_one_parquet_part_per_chunk(tmp_path):
    log = SyntheticEvents(30_000, seed=4, chunk_events=10_000)
    files = write_synthetic_events(log, tmp_path / "events")
    assert [f.name for f in files] == [f"part-{k:05d}.parquet" for k in range(len(files))]
    assert pl.read_parquet(files).equals(log.frame())


@pytest.mark.parametrize("bad", [{"events": 0}, {"events": 10, "chunk_events": 0}, {"events": 10, "users": 0}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ConfigError):
        SyntheticEvents(**bad)
