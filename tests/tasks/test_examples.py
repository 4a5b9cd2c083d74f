"""Task examples: labels from after the cut-off only, out-of-time splits, each task's definition."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.schema import EventLog
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError
from shopformer.tasks.base import TASKS
from shopformer.tasks.examples import (
    DAY,
    TaskConfig,
    build_examples,
    live_context,
    split_times,
    task_context,
)
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=300, days=30, seed=3))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    return task_context(dataset.events, dataset.catalog)


def _log(rows, resolution="second") -> EventLog:
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp", "event_type"], orient="row")
    return EventLog(frame, resolution)


def test_every_task_has_three_out_of_time_splits(demo):
    times = split_times(demo.events, demo.time_resolution, TaskConfig())
    assert demo.fit_until == times.test_start
    for task in TASKS:
        examples = build_examples(task, demo)
        frame = examples.frame
        assert frame["example_id"].to_list() == list(range(frame.height))
        assert set(frame["split"]) == {"train", "valid", "test"}, task
        by_split = {s: frame.filter(pl.col("split") == s)["cutoff"] for s in ("train", "valid", "test")}
        assert by_split["train"].max() < by_split["valid"].min() <= by_split["valid"].max() < by_split["test"].min()
        assert by_split["test"].min() >= times.test_start


def test_time_tasks_label_only_the_window_after_the_cutoff(demo):
    times = split_times(demo.events, demo.time_resolution, TaskConfig())
    events = demo.events
    propensity = build_examples("propensity", demo).frame
    churn = build_examples("churn", demo).frame
    assert propensity.select("user_id", "cutoff", "history_end").equals(churn.select("user_id", "cutoff", "history_end"))
    for row in propensity.sample(40, seed=1).iter_rows(named=True):
        mine = events.filter(pl.col("user_id") == row["user_id"])
        assert row["history_end"] == mine.filter(pl.col("timestamp") < row["cutoff"]).height
        window = mine.filter(pl.col("timestamp").is_between(row["cutoff"], row["cutoff"] + times.horizon, closed="left"))
        assert row["label"] == int((window["event_type"] == "purchase").any())
        churned = churn.filter((pl.col("user_id") == row["user_id"]) & (pl.col("cutoff") == row["cutoff"]))["label"].item()
        assert churned == int(window.height == 0)
    train = propensity.filter(pl.col("split") == "train")
    assert (train["cutoff"] + times.horizon).max() <= times.valid_start


def test_intent_prefixes_are_purchase_free_and_labelled_by_the_session(demo):
    examples = build_examples("intent", demo).frame
    assert set(examples["prefix"]) == {"1", "2", "3", "5", "all"}
    events = demo.events
    for row in examples.sample(60, seed=2).iter_rows(named=True):
        session = events.filter((pl.col("user_id") == row["user_id"]) & (pl.col("session_id") == row["session_id"]))
        seen = session.filter(pl.col("position") < row["history_end"])
        assert seen.height >= 1 and not (seen["event_type"] == "purchase").any()
        if row["prefix"] != "all":
            assert seen.height == int(row["prefix"])
        assert row["label"] == int((session["event_type"] == "purchase").any())
        assert row["cutoff"] == seen["timestamp"].max()


def test_item_propensity_candidates_are_recently_viewed_items(demo):
    config = TaskConfig(max_candidate_items=4)
    frame = build_examples("item-propensity", demo, config).frame
    assert frame.group_by("user_id", "cutoff").len()["len"].max() <= 4
    events = demo.events
    for row in frame.sample(30, seed=3).iter_rows(named=True):
        before = events.filter((pl.col("user_id") == row["user_id"]) & (pl.col("position") < row["history_end"]))
        assert row["item_id"] in before.filter(pl.col("event_type") != "purchase")["item_id"].to_list()


def test_next_event_type_labels_index_the_classes(demo):
    examples = build_examples("next-event-type", demo)
    assert examples.classes[0] == "view" and "purchase" in examples.classes and not examples.is_binary
    events = demo.events
    for row in examples.frame.sample(30, seed=4).iter_rows(named=True):
        following = events.filter((pl.col("user_id") == row["user_id"]) & (pl.col("position") == row["history_end"]))
        assert examples.classes[row["label"]] == following["event_type"].item()


def test_day_granular_sessions_are_user_days():
    day = 1_700_006_400 - 1_700_006_400 % DAY
    rows = [("u1", f"i{k}", day + d * DAY, t) for d in range(12) for k, t in enumerate(("click", "cart", "purchase"))]
    rows += [("u1", "late", day + 3 * DAY, "click")]  # after the purchase in the file, before it in time order
    context = task_context(_log(rows, "day"), None, TaskConfig(horizon_days=2))
    frame = build_examples("intent", context).frame
    whole_day = frame.filter(pl.col("prefix") == "all")
    assert whole_day["history_end"].to_list()[:4] == [2, 5, 8, 12]  # every non-purchase event of the day
    assert set(frame["label"]) == {1}


def test_taobao_tasks_build_on_the_real_log():
    root = dataset_path("taobao-multibehavior")
    dataset = read_dataset("taobao", root / "ecomm_edge_train.txt", item_features_path=root / "ecomm_item_feature.txt")
    context = task_context(dataset.events, dataset.catalog)
    assert split_times(context.events, "day", TaskConfig()).horizon == 2 * DAY
    intent = build_examples("intent", context)
    test = intent.split("test").frame
    assert test.height > 1000 and 0.2 < test["label"].mean() < 0.8
    assert build_examples("propensity", context).split("test").frame["user_id"].n_unique() > 1000


def _hours_log(hours: float, seed: int = 0) -> EventLog:
    """Sessions of 3-8 events, a few seconds apart, started at random over `hours`; a third end in a purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, begin in enumerate(rng.uniform(0, hours * 3600, 600).astype(int)):
        n = int(rng.integers(3, 9))
        types = ["view"] * (n - 1) + ["purchase" if s % 3 == 0 else "view"]
        rows += [(f"u{s % 200}", f"i{rng.integers(50)}", 1_700_000_000 + begin + 20 * k, t) for k, t in enumerate(types)]
    return _log(rows)


def test_a_log_of_hours_is_split_by_minutes():
    log = _hours_log(3)
    context = task_context(log, None)
    times = split_times(context.events, "second", TaskConfig())
    assert times.horizon % 60 == 0 and 30 * 60 <= times.horizon <= 40 * 60  # the last fifth of evenly spread events
    assert times.start < times.valid_start < times.test_start < times.end == log.frame["timestamp"].max() + 1
    assert context.fit_until == times.test_start
    for task in TASKS:
        frame = build_examples(task, context).frame
        assert set(frame["split"]) == {"train", "valid", "test"}, task
        assert frame.filter(pl.col("split") == "test")["cutoff"].min() >= times.test_start
    train = build_examples("churn", context).split("train").frame
    assert set(np.diff(train["cutoff"].unique().sort().to_numpy())) == {times.horizon}  # training cut-offs h apart
    assert (train["cutoff"] + times.horizon).max() <= times.valid_start


def test_logs_of_days_keep_whole_day_horizons(demo):
    assert split_times(demo.events, demo.time_resolution, TaskConfig()).horizon % DAY == 0
    with pytest.raises(ConfigError, match="too short for a 1-day horizon"):  # a stated horizon is never shortened
        task_context(_hours_log(3), None, TaskConfig(horizon_days=1))
    with pytest.raises(ConfigError, match="too short for a 1-day horizon"):  # day-granular: no finer grain exists
        task_context(_log([("u", "i", t * DAY, "view") for t in range(3)], "day"), None)
    with pytest.raises(ConfigError, match="spans 2.5 minutes, too short for a 1-minute horizon"):
        task_context(_log([("u", "i", t * 30, "view") for t in range(6)]), None)


def test_bad_input_is_a_clear_error(demo):
    with pytest.raises(ConfigError, match="unknown task"):
        build_examples("conversion", demo)
    with pytest.raises(ConfigError, match="horizon: Extra inputs"):
        TaskConfig.from_dict({"horizon": 3})
    with pytest.raises(ConfigError, match="too short"):
        task_context(_log([("u", "i", t * DAY, "view") for t in range(4)], "day"), None, TaskConfig(horizon_days=2))
    with pytest.raises(ConfigError, match="timestamps"):
        task_context(_log([("u", "i", t, "view") for t in range(30)], "order"), None)


def test_an_interrupted_session_is_split_into_its_parts(caplog):
    interleaved = _log([("u", "i", t * 600, "view") for t in range(4)]).frame.with_columns(
        session_id=pl.Series(["a", "b", "a", "a"]))
    context = live_context(EventLog(interleaved), None)
    assert context.events.sort("timestamp")["session_id"].to_list() == ["a~1", "b", "a~2", "a~2"]
    assert "1 of 2 sessions are interrupted" in caplog.text
