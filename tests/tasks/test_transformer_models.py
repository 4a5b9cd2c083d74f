"""Transformer task models on real Taobao behaviour: inputs through the visible-events gate only,
no leaked futures, fit / predict / save / load round trips for the frozen, fine-tuned and hybrid models."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from shopformer.data.formats import read_dataset
from shopformer.errors import ShopformerError
from shopformer.evaluate.binary import roc_auc
from shopformer.predict.tasks import behaviour_source
from shopformer.tasks.base import TaskContext, TaskExamples, visible_events
from shopformer.tasks.examples import build_examples, task_context
from shopformer.tasks.hybrid import HybridTaskModel
from shopformer.tasks.registry import load_model, make_model
from shopformer.tasks.shared import SharedBehaviour
from shopformer.tasks.transformer_inputs import (
    EXTRAS,
    NEXT_ITEM_EXTRAS,
    task_inputs,
    unseen_future,
)
from shopformer.tasks.transformer_models import (
    TransformerTaskModel,
    pretrained_behaviour_model,
)
from shopformer.train.heads import HeadTraining
from tests.conftest import dataset_path

QUICK = HeadTraining(max_epochs=3, patience=2)


@pytest.fixture(scope="module")
def context() -> TaskContext:
    path = dataset_path("taobao-multibehavior")
    dataset = read_dataset("taobao", path / "ecomm_edge_train.txt", user_features_path=path / "ecomm_user_feature.txt",
                           item_features_path=path / "ecomm_item_feature.txt")
    users = dataset.events.frame["user_id"].unique().sort()[:500]
    log = dataset.events.with_frame(dataset.events.frame.filter(pl.col("user_id").is_in(users.implode())))
    catalog = dataset.catalog.frame.filter(pl.col("item_id").is_in(log.frame["item_id"].unique().implode()))
    return task_context(log, type(dataset.catalog)(catalog))


@pytest.fixture(scope="module")
def shared(context) -> SharedBehaviour:
    torch.set_num_threads(1)
    shared = behaviour_source()
    pretrained_behaviour_model(context, shared, train={"epochs": 2}, model={"dim": 16, "layers": 1})
    return shared


@pytest.fixture(scope="module")
def churn(context) -> TaskExamples:
    return build_examples("churn", context)


def test_inputs_are_the_last_visible_events_and_their_timing(context, shared, churn):
    behaviour = shared.model
    inputs = task_inputs(behaviour, churn, context)
    max_len = behaviour.max_len
    assert np.array_equal(inputs.histories.lengths, np.minimum(churn.frame["history_end"].to_numpy(), max_len))
    last = visible_events(context, churn).group_by("example_id").agg(pl.col("timestamp").max())
    gaps = churn.frame.join(last, on="example_id", how="left", maintain_order="left")
    expected = np.log1p((gaps["cutoff"] - gaps["timestamp"]).to_numpy() / 3600)
    assert np.allclose(inputs.extras[:, EXTRAS.index("log_hours_since_last_event")], expected, atol=1e-5)
    entropy, best, mean = inputs.extras[:, len(EXTRAS):].T
    assert inputs.extras.shape[1] == len(EXTRAS) + len(NEXT_ITEM_EXTRAS)
    assert (entropy > 0).all() and (entropy <= np.log(behaviour.item_features.n_items) + 1e-4).all()
    assert (best >= mean - 1e-5).all() and (best <= 0).all()


def test_events_at_or_after_the_cutoff_never_change_the_inputs(context, shared, churn):
    behaviour = shared.model
    first = churn.frame.filter(pl.col("history_end") == pl.col("history_end").min().over("user_id"))
    examples = TaskExamples("churn", first.unique("user_id", keep="first", maintain_order=True))
    ends = examples.frame.select("user_id", "history_end")
    events = context.events.join(ends, on="user_id", how="left", maintain_order="left")
    future = pl.col("position") >= pl.col("history_end").fill_null(0)
    altered = events.with_columns(event_type=pl.when(future).then(pl.lit("purchase")).otherwise("event_type"),
                                  item_id=pl.when(future).then(pl.lit("not-an-item")).otherwise("item_id")).drop("history_end")
    scrambled = TaskContext(altered, context.catalog, context.time_resolution, context.fit_until)
    before, after = task_inputs(behaviour, examples, context), task_inputs(behaviour, examples, scrambled)
    assert np.array_equal(before.histories.items, after.histories.items)
    assert np.array_equal(before.histories.event_types, after.histories.event_types)
    assert np.array_equal(before.extras, after.extras)


def test_pretraining_holds_out_half_the_users_and_their_futures_count_as_unseen(context, shared, churn):
    behaviour = shared.model
    assert behaviour.last_event_time() < context.fit_until
    trained_on = set(behaviour.known_users())
    assert 0.3 < len(trained_on) / churn.frame["user_id"].n_unique() < 0.7
    unseen = unseen_future(behaviour, churn)
    seen_user = churn.frame["user_id"].is_in(list(trained_on)).to_numpy()
    test = (churn.frame["split"] == "test").to_numpy()
    assert unseen[~seen_user].all()
    assert unseen[test].all()  # the test cut-off comes after every pre-training event
    assert not unseen[seen_user & ~test].any()


@pytest.mark.parametrize("finetune", [False, True])
def test_transformer_model_fits_predicts_and_reloads_identically(tmp_path, context, shared, churn, finetune):
    behaviour = shared.model
    before = {k: v.clone() for k, v in behaviour.transformer.state_dict().items()}
    model = TransformerTaskModel("shopformer-x", behaviour, finetune=finetune, training=QUICK, save_behaviour=True)
    model.fit(churn.split("train"), churn.split("valid"), context)
    test = churn.split("test")
    probs = model.predict_proba(test, context)
    assert probs.shape == (len(test),) and ((probs > 0) & (probs < 1)).all()
    after = behaviour.transformer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared encoder is never changed
    reloaded = load_model(model.save(tmp_path / "model"), behaviour_source())
    assert np.allclose(reloaded.predict_proba(test, context), probs, atol=1e-6)


def test_next_event_type_gives_a_distribution_per_example(context, shared):
    examples = build_examples("next-event-type", context)
    model = make_model("shopformer-frozen", context, shared)
    model.training = QUICK
    model.fit(examples.split("train"), examples.split("valid"), context)
    probs = model.predict_proba(examples.split("test"), context)
    assert probs.shape == (len(examples.split("test")), len(examples.classes))
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_hybrid_on_item_propensity_beats_chance_and_reloads_from_a_bundle_folder(tmp_path, context, shared):
    examples = build_examples("item-propensity", context)
    assert "item_id" in examples.frame.columns
    model = make_model("shopformer", context, shared)
    assert isinstance(model, HybridTaskModel)
    model.fit(examples.split("train"), examples.split("valid"), context)
    test = examples.split("test")
    probs = model.predict_proba(test, context)
    assert roc_auc(test.labels, probs) > 0.6
    shared.model.save(tmp_path / "bundle")
    model.head_.save_behaviour = False  # as in a bundle: the behaviour model is the bundle's own
    model.save(tmp_path / "bundle" / "tasks" / "item-propensity")
    reloaded = load_model(tmp_path / "bundle" / "tasks" / "item-propensity", behaviour_source(tmp_path / "bundle"))
    assert np.allclose(reloaded.predict_proba(test, context), probs, atol=1e-6)


def test_unfitted_and_unloadable_models_say_what_is_missing(tmp_path, context, shared, churn):
    model = TransformerTaskModel("shopformer-x", shared.model, finetune=False, training=QUICK)
    with pytest.raises(ShopformerError, match="not fitted"):
        model.predict_proba(churn, context)
    model.fit(churn.split("train"), churn.split("valid"), context).save(tmp_path / "m")
    with pytest.raises(ShopformerError, match="behaviour model"):
        load_model(tmp_path / "m", behaviour_source())


def test_default_model_fits_onto_a_bundle_and_scores_users_after_reloading(tmp_path):
    from shopformer.data.ingest import ingest_files
    from shopformer.data.synth import DemoShopConfig, generate_demo_shop
    from shopformer.predict.estimator import Shopformer
    from shopformer.predict.tasks import TaskPredictor, bundle_shared

    files = generate_demo_shop(tmp_path / "shop", DemoShopConfig(n_users=200, days=30, seed=3))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    bundle = tmp_path / "bundle"
    Shopformer(model={"dim": 16, "layers": 1, "use_text": False}, train={"epochs": 1, "num_threads": 1,
                                                                           "progress": False}).fit(dataset).save(bundle)
    predictor = TaskPredictor.fit(dataset, ("churn",), model="shopformer", shared=bundle_shared(bundle, "shopformer"))
    predictor.save(bundle)
    assert not (bundle / "tasks" / "churn" / "model" / "head" / "behaviour").exists()  # the bundle's own is used
    scores = TaskPredictor.load(bundle).predict_proba("churn", users=["u00001", "u00002"])
    assert scores.height == 2
    assert ((scores["probability"] > 0) & (scores["probability"] < 1)).all()
