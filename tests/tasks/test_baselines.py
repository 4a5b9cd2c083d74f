"""Every feature baseline passes the same contract: learns the demo shop's tasks, saves and reloads exactly."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import roc_auc
from shopformer.tasks.base import TaskExamples
from shopformer.tasks.examples import build_examples, task_context
from shopformer.tasks.registry import MODEL_FACTORIES, load_model, make_model

BASELINES = ("logistic", "lightgbm")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=400, days=30, seed=5))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    context = task_context(dataset.events, dataset.catalog)
    return context, {task: build_examples(task, context) for task in ("intent", "next-event-type")}


@pytest.mark.parametrize("name", BASELINES)
def test_learns_intent_and_round_trips(shop, name, tmp_path):
    context, examples = shop
    intent = examples["intent"]
    model = make_model(name, context, {}).fit(intent.split("train"), intent.split("valid"), context)
    test = intent.split("test")
    probs = model.predict_proba(test, context)
    assert probs.shape == (len(test),) and ((probs >= 0) & (probs <= 1)).all()
    assert roc_auc(test.labels, probs) > 0.65
    reloaded = load_model(model.save(tmp_path / name))
    assert np.allclose(reloaded.predict_proba(test, context), probs, atol=1e-6)
    assert not any(tmp_path.rglob("*.pkl")) and not any(tmp_path.rglob("*.pickle"))


@pytest.mark.parametrize("name", BASELINES)
def test_multiclass_rows_are_distributions(shop, name):
    context, examples = shop
    task = examples["next-event-type"]
    model = make_model(name, context, {}).fit(task.split("train"), task.split("valid"), context)
    probs = model.predict_proba(task.split("test"), context)
    assert probs.shape == (len(task.split("test")), len(task.classes))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("name", BASELINES)
def test_one_class_training_data_is_refused(shop, name):
    context, examples = shop
    train = examples["intent"].split("train")
    only_negatives = TaskExamples("intent", train.frame.filter(pl.col("label") == 0))
    with pytest.raises(DataError, match="both classes"):
        make_model(name, context, {}).fit(only_negatives, examples["intent"].split("valid"), context)


def test_registry_errors(tmp_path):
    assert set(BASELINES) <= set(MODEL_FACTORIES)
    with pytest.raises(ConfigError, match="unknown task model"):
        make_model("xgboost", None, {})
    with pytest.raises(DataError, match="model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "shopformer.task_model", "version": 1, "kind": "mystery"}')
    with pytest.raises(DataError, match="unknown kind"):
        load_model(tmp_path)
