"""The whole preparation pipeline, its config and the saved form of its result."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Catalog, Dataset
from shopformer.errors import ConfigError
from tests.data.test_prepare import make_log


def shop_dataset() -> Dataset:
    events = make_log([
        ("u2", "i1", 100, "view"), ("u1", "i1", 10, "view"), ("u1", "i1", 11, "view"),  # 11 repeats 10
        ("u1", "i2", 20, "cart"), ("u1", "i3", 5000, "purchase"), ("u2", "i2", 200, "view"),
        ("u2", "i3", 300, "view"), ("u3", "i4", 50, "view"), ("u3", "i1", 60, "wishlist_share"),
    ])
    catalog = Catalog(pl.DataFrame({
        "item_id": ["i4", "i3", "i2", "i1", "i9"],
        "title": ["four", "three", "two", "one", "nine"],
        "price": [4.0, 3.0, 2.0, 1.0, 9.0],
    }))
    users = pl.DataFrame({"user_id": ["u1", "u2", "u3"], "age": [30, 40, 50]})
    return Dataset("shop", events, catalog, users)


def test_prepare_runs_every_step_and_reports_it():
    config = PrepareConfig(min_user_events=3, min_item_events=2, session_gap_seconds=1800)
    prepared = prepare(shop_dataset(), config)
    report = {step.step: step for step in prepared.report}
    assert list(report) == ["sort", "dedupe", "min_count", "sessionize", "encode", "sequences", "catalog"]
    assert (report["dedupe"].rows_in, report["dedupe"].rows_out) == (9, 8)
    # u3 (2 events) and i4 (1 event) go; that leaves i1, i2, i3 with 2 events each.
    assert report["min_count"].details == {"removed": 2, "iterations": 1}
    assert prepared.events.frame.select("user_id", "item_id", "session_id").rows() == [
        ("u1", "i1", "u1:0"), ("u1", "i2", "u1:0"), ("u1", "i3", "u1:1"),
        ("u2", "i1", "u2:0"), ("u2", "i2", "u2:0"), ("u2", "i3", "u2:0"),
    ]
    assert prepared.user_encoder.classes_.to_list() == ["u1", "u2"]
    assert prepared.item_encoder.classes_.to_list() == ["i1", "i2", "i3"]
    assert prepared.catalog.frame["item_id"].to_list() == ["i1", "i2", "i3"]
    assert prepared.users["user_id"].to_list() == ["u1", "u2"]
    assert prepared.sequences.offsets.tolist() == [0, 3, 6]
    assert all(step.seconds >= 0 for step in prepared.report)


def test_custom_event_types_extend_the_canonical_vocabulary():
    prepared = prepare(shop_dataset())
    vocabulary = prepared.event_vocab.classes_.to_list()
    assert vocabulary[:5] == ["view", "click", "favourite", "cart", "purchase"]
    assert vocabulary[-1] == "wishlist_share"
    assert prepared.sequences.event_vocabulary == tuple(vocabulary)


def test_dedupe_can_be_switched_off_and_progress_shown():
    prepared = prepare(shop_dataset(), PrepareConfig(dedupe_consecutive=False), progress=True)
    assert len(prepared.events) == 9
    assert "dedupe" not in [step.step for step in prepared.report]


def test_save_and_load_restore_the_same_dataset(tmp_path):
    prepared = prepare(shop_dataset(), PrepareConfig(min_user_events=2))
    prepared.save(tmp_path / "prepared")
    names = {p.name for p in (tmp_path / "prepared").iterdir()}
    assert {"events.parquet", "catalog.parquet", "users.parquet", "sequences.npz", "sequences.json",
            "user_encoder.json", "item_encoder.json", "event_types.json", "config.json", "report.json"} <= names
    assert not any(name.endswith((".pkl", ".pickle")) for name in names)
    loaded = PreparedDataset.load(tmp_path / "prepared")
    assert loaded.name == prepared.name
    assert loaded.events.time_resolution == prepared.events.time_resolution
    assert loaded.events.frame.equals(prepared.events.frame)
    assert loaded.catalog.frame.equals(prepared.catalog.frame)
    assert loaded.users.equals(prepared.users)
    for encoder in ("user_encoder", "item_encoder", "event_vocab"):
        assert getattr(loaded, encoder).classes_.equals(getattr(prepared, encoder).classes_)
    assert loaded.sequences.equals(prepared.sequences)
    assert loaded.report == prepared.report
    assert loaded.config == prepared.config


def test_a_dataset_without_catalog_or_users_round_trips(tmp_path):
    dataset = Dataset("bare", make_log([("a", "x", 1, "view"), ("a", "y", 2, "view")], time_resolution="order"))
    prepared = prepare(dataset)
    loaded = PreparedDataset.load(prepared.save(tmp_path))
    assert loaded.catalog is None and loaded.users is None
    assert loaded.events.time_resolution == "order"
    assert loaded.events.frame.equals(prepared.events.frame)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValidationError):
        PrepareConfig(min_user_event=5)
    with pytest.raises(ConfigError, match="min_user_event"):
        PrepareConfig.from_dict({"min_user_event": 5})
    with pytest.raises(ConfigError, match="min_item_events"):
        PrepareConfig.from_dict({"min_item_events": 0})
    assert PrepareConfig.from_dict({"min_user_events": 5}).min_user_events == 5
