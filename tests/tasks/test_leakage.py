"""No leakage: features never read events at or after the cut-off, and labels carry all the signal."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.formats import read_dataset
from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.evaluate.binary import roc_auc
from shopformer.tasks.base import TASKS, TaskContext, TaskExamples, example_features
from shopformer.tasks.examples import DAY, TaskConfig, build_examples, split_times, task_context
from shopformer.tasks.registry import make_model
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def shop_dataset(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=400, days=30, seed=7))
    return ingest_files(files.events, files.catalog, name="demo").dataset


@pytest.fixture(scope="module")
def shop(shop_dataset):
    return task_context(shop_dataset.events, shop_dataset.catalog)


@pytest.fixture(scope="module")
def hours(shop_dataset):
    """The demo shop's 30 days squeezed into 3 hours: a log too short for a 1-day horizon."""
    log = shop_dataset.events
    start = log.frame["timestamp"].min()
    squeezed = log.with_frame(log.frame.with_columns(timestamp=start + (pl.col("timestamp") - start) // 240))
    return task_context(squeezed, shop_dataset.catalog)


def _earliest_per_user(examples: TaskExamples) -> TaskExamples:
    frame = examples.frame.filter(pl.col("history_end") == pl.col("history_end").min().over("user_id"))
    return TaskExamples(examples.task, frame.unique("user_id", keep="first", maintain_order=True), examples.classes)


def _scrambled_future(context: TaskContext, examples: TaskExamples) -> TaskContext:
    """Every event at or after each user's earliest example is rewritten, and more events appended."""
    ends = examples.frame.select("user_id", "history_end")
    events = context.events.join(ends, on="user_id", how="left", maintain_order="left")
    future = pl.col("position") >= pl.col("history_end").fill_null(0)
    rewrites = {"event_type": pl.lit("purchase"), "item_id": pl.lit("p00001"), "value": pl.lit(9999.0)}
    scrambled = events.with_columns(
        pl.when(future).then(new).otherwise(name).alias(name) for name, new in rewrites.items() if name in events.columns
    ).drop("history_end")
    extra = scrambled.group_by("user_id").agg(pl.all().last()).with_columns(
        pl.col("timestamp") + 3600, pl.col("position") + 1).select(scrambled.columns)
    return TaskContext(pl.concat([scrambled, extra]).sort("user_id", "position"), context.catalog,
                       context.time_resolution, context.fit_until)


@pytest.mark.parametrize("task", TASKS)
def test_features_ignore_every_event_at_or_after_the_cutoff(shop, task):
    examples = _earliest_per_user(build_examples(task, shop))
    before = example_features(shop, examples)
    after = example_features(_scrambled_future(shop, examples), examples)
    assert before.names == after.names
    assert np.array_equal(before.values, after.values)


@pytest.fixture(scope="module")
def taobao():
    root = dataset_path("taobao-multibehavior")
    dataset = read_dataset("taobao", root / "ecomm_edge_train.txt", item_features_path=root / "ecomm_item_feature.txt")
    return task_context(dataset.events, dataset.catalog)


@pytest.mark.parametrize("task", TASKS)
def test_sub_day_features_ignore_every_event_at_or_after_the_cutoff(hours, task):
    assert split_times(hours.events, hours.time_resolution, TaskConfig()).horizon < DAY
    examples = _earliest_per_user(build_examples(task, hours))
    before = example_features(hours, examples)
    after = example_features(_scrambled_future(hours, examples), examples)
    assert np.array_equal(before.values, after.values)


@pytest.mark.parametrize("task", ["intent", "propensity"])
def test_sub_day_training_labels_end_before_the_valid_period(hours, task):
    times = split_times(hours.events, hours.time_resolution, TaskConfig())
    frame = build_examples(task, hours).frame
    train = frame.filter(pl.col("split") == "train")
    if task == "intent":  # the whole session, purchase included, lies before the valid period
        ends = hours.events.group_by("user_id", "session_id").agg(last=pl.col("timestamp").max())
        assert train.join(ends, on=["user_id", "session_id"])["last"].max() < times.valid_start
    else:
        assert (train["cutoff"] + times.horizon).max() <= times.valid_start
    assert frame.filter(pl.col("split") == "test")["cutoff"].min() >= times.test_start


@pytest.mark.parametrize("task", ["intent", "item-propensity"])
def test_day_granular_features_ignore_the_rest_of_the_day(taobao, task):
    # A day's purchases share the timestamp of its clicks: only the position gate keeps them out.
    examples = _earliest_per_user(build_examples(task, taobao))
    before = example_features(taobao, examples)
    after = example_features(_scrambled_future(taobao, examples), examples)
    assert np.array_equal(before.values, after.values)


@pytest.mark.parametrize("task", ["intent", "churn"])
def test_shuffled_future_labels_leave_nothing_to_learn(shop, task):
    examples = build_examples(task, shop)
    train, valid, test = (examples.split(s) for s in ("train", "valid", "test"))
    rng = np.random.default_rng(0)
    shuffle = lambda part: TaskExamples(task, part.frame.with_columns(label=pl.Series(rng.permutation(part.labels))))  # noqa: E731
    real = make_model("lightgbm", shop, {}).fit(train, valid, shop)
    blind = make_model("lightgbm", shop, {}).fit(shuffle(train), shuffle(valid), shop)
    assert roc_auc(test.labels, real.predict_proba(test, shop)) > 0.65
    assert abs(roc_auc(test.labels, blind.predict_proba(test, shop)) - 0.5) < 0.06
