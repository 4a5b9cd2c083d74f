"""Compact per-user sequences: layout, views, padding, save/load, and real-data offsets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.prepare import LabelEncoder
from shopformer.data.prepared import event_vocabulary
from shopformer.data.sequences import Sequences
from shopformer.errors import DataError
from tests.data.test_prepare import make_log
from tests.data.test_splits import beauty_log


def build(log) -> tuple[Sequences, LabelEncoder, LabelEncoder]:
    users = LabelEncoder().fit(log.frame["user_id"])
    items = LabelEncoder().fit(log.frame["item_id"])
    return Sequences.from_log(log, users, items, event_vocabulary(log)), users, items


def small_log():
    # Out of order on purpose: from_log must group by user and order by time.
    return make_log([
        ("b", "y", 20, "cart"), ("a", "x", 5, "view"), ("b", "x", 10, "view"),
        ("a", "z", 7, "purchase"), ("a", "y", 6, "view"), ("c", "z", 1, "view"),
    ])


def test_layout_of_a_small_log():
    sequences, users, items = build(small_log())
    # users a, b, c -> codes 2, 3, 4; items x, y, z -> 2, 3, 4; events: view 2, cart 5, purchase 6.
    assert len(sequences) == 3 and sequences.n_events == 6
    assert sequences.users.tolist() == [2, 3, 4]
    assert sequences.offsets.tolist() == [0, 3, 5, 6]
    assert sequences.lengths.tolist() == [3, 2, 1]
    assert sequences.items.tolist() == [2, 3, 4, 2, 3, 4]
    assert sequences.timestamps.tolist() == [5, 6, 7, 10, 20, 1]
    vocabulary = sequences.event_vocabulary
    assert [vocabulary[c - 2] for c in sequences.event_types] == ["view", "view", "purchase", "view", "cart", "view"]
    dtypes = [a.dtype for a in (sequences.users, sequences.offsets, sequences.items,
                                sequences.event_types, sequences.timestamps)]
    assert dtypes == [np.int32, np.int64, np.int32, np.int8, np.int64]


def test_sequence_returns_views_not_copies():
    sequences, _, items = build(small_log())
    second = sequences.sequence(1)
    assert second.user == 3 and len(second) == 2
    assert items.inverse_transform(second.items).to_list() == ["x", "y"]
    assert np.shares_memory(second.items, sequences.items)
    assert sequences.sequence(-1).items.tolist() == [4]
    with pytest.raises(IndexError):
        sequences.sequence(3)


def test_last_is_left_padded_with_zeros():
    sequences, _, _ = build(small_log())
    assert sequences.last(2).tolist() == [[3, 4], [2, 3], [0, 4]]
    assert sequences.last(4).tolist() == [[0, 2, 3, 4], [0, 0, 2, 3], [0, 0, 0, 4]]
    assert sequences.last(4).dtype == np.int32
    assert sequences.last(2, field="timestamps").tolist() == [[6, 7], [10, 20], [0, 1]]
    with pytest.raises(ValueError):
        sequences.last(2, field="users")


def test_positions_finds_users_by_code():
    sequences, users, _ = build(small_log())
    codes = users.transform(["c", "a", "nobody"])
    assert sequences.positions(codes).tolist() == [2, 0, -1]


def test_unknown_items_get_the_unknown_code_and_unknown_users_are_an_error():
    log = small_log()
    users = LabelEncoder().fit(["a", "b", "c"])
    items = LabelEncoder().fit(["x"])
    sequences = Sequences.from_log(log, users, items, event_vocabulary(log))
    assert sequences.items.tolist() == [2, 1, 1, 2, 1, 1]
    with pytest.raises(DataError, match="users"):
        Sequences.from_log(log, LabelEncoder().fit(["a"]), items, event_vocabulary(log))


def test_save_and_load_round_trip(tmp_path):
    sequences, _, _ = build(small_log())
    sequences.save(tmp_path / "sequences.npz")
    assert (tmp_path / "sequences.json").is_file()
    loaded = Sequences.load(tmp_path / "sequences.npz")
    assert loaded.equals(sequences)
    assert loaded.items.dtype == np.int32 and loaded.event_types.dtype == np.int8


def test_empty_log_gives_empty_sequences():
    sequences, _, _ = build(make_log([]))
    assert len(sequences) == 0 and sequences.offsets.tolist() == [0]
    assert sequences.last(3).shape == (0, 3)


def test_inconsistent_arrays_are_rejected():
    with pytest.raises(DataError):
        Sequences(np.array([2]), np.array([0, 3]), np.zeros(2), np.zeros(2), np.zeros(2), ())


def test_offsets_on_amazon_beauty_match_the_user_lines():
    log = beauty_log()
    sequences, users, items = build(log)
    lengths_by_user = dict(log.frame.group_by("user_id").len().rows())
    expected = [lengths_by_user[u] for u in users.classes_.to_list()]
    assert len(sequences) == 22_363 and sequences.n_events == 198_502
    assert sequences.offsets[-1] == 198_502
    assert sequences.lengths.tolist() == expected
    # A user's sequence is their line's items in file order.
    first = log.frame.filter(pl.col("user_id") == "1")["item_id"].to_list()
    row = sequences.positions(users.transform(["1"]))[0]
    assert items.inverse_transform(sequences.sequence(row).items).to_list() == first
