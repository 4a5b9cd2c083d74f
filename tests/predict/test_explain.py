"""`predict.explain.explain`: recommendations and task predictions explained through a fitted model.

A constructed shop has one cause built in: whoever carts the Alpine Tent views the Alpine Tent Stakes
two events later. Its explanation must name the tent; the demo shop's intent model is explained
by occlusion (through the whole task model) and by integrated gradients (through its Transformer head).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
import torch

from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError, ShopformerError, UnknownUserError
from shopformer.predict.estimator import Shopformer
from shopformer.predict.explain import UnknownItemError, explain
from shopformer.predict.tasks import TaskPredictor
from shopformer.tasks.shared import SharedBehaviour

TINY = {"dim": 16, "layers": 1, "use_text": False}
TRAIN = {"epochs": 8, "batch_size": 16, "warmup_steps": 10, "lr": 1e-2, "progress": False, "num_threads": 1, "seed": 0}
MONDAY = int(datetime(2024, 3, 4, 9, tzinfo=UTC).timestamp())


def _constructed_shop() -> Dataset:
    """Users who cart the tent view the stakes two events later, then a mallet; "waiting" users
    (u150..u169) have carted the tent and not yet seen the stakes."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(200):
        fillers = [f"f{i:02d}" for i in rng.integers(0, 20, size=4)]
        # The stakes are a training target; the last event (validation) is the mallet that follows them.
        items = [*fillers[:2], "tent", fillers[2]] + (["stakes", "mallet"] if u < 150 else [])
        if u >= 170:
            items = fillers
        start = MONDAY + 3600 * u
        for j, item in enumerate(items):
            rows.append((f"u{u:03d}", item, start + 86_400 * j, "cart" if item == "tent" else "view"))
    events = pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64,
                                        "event_type": pl.String}, orient="row")
    catalog = pl.DataFrame({
        "item_id": ["tent", "stakes", "mallet", *[f"f{i:02d}" for i in range(20)]],
        "title": ["Alpine Tent", "Alpine Tent Stakes", "Alpine Mallet", *[f"Kitchen Gadget {i}" for i in range(20)]],
        "brand": ["Alpine"] * 3 + ["Acme" if i % 2 else "Zeta" for i in range(20)],
        "category": ["Outdoor > Tents", "Outdoor > Accessories", "Outdoor > Tools", *["Home > Kitchen"] * 20]})
    return Dataset("constructed", EventLog(events), Catalog(catalog))


@pytest.fixture(scope="module")
def shop():
    torch.set_num_threads(1)
    dataset = _constructed_shop()
    return dataset, Shopformer(model=TINY, train=TRAIN).fit(prepare(dataset, PrepareConfig()))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    files = generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=120, n_items=60, days=21, seed=3))
    dataset = ingest_files(files.events, files.catalog, name="demo").dataset
    model = Shopformer(model=TINY, train={**TRAIN, "epochs": 2}).fit(prepare(dataset, PrepareConfig()))
    predictor = TaskPredictor.fit(dataset, ("intent",), model="shopformer-frozen", shared=SharedBehaviour(model=model))
    return dataset, model, predictor


def test_the_built_in_cause_is_the_top_event_and_the_sentence_names_it(shop):
    dataset, model = shop
    out = explain(model, "u160", item="stakes", catalog=dataset.catalog)
    top = out["events"][0]
    assert top["item_id"] == "tent" and top["event_type"] == "cart" and top["title"] == "Alpine Tent"
    others = [e["weight"] for e in out["events"][1:]]
    assert top["weight"] > 0 and top["weight"] > max(others)  # its removal drops the score most
    weekday = f"{datetime.fromtimestamp(top['timestamp'], UTC):%A}"
    assert out["sentence"].startswith("Recommended Alpine Tent Stakes because you carted Alpine Tent on " + weekday)
    assert out["target"] == {"item_id": "stakes", "title": "Alpine Tent Stakes", "category": "Outdoor > Accessories",
                             "brand": "Alpine"}


def test_occlusion_weights_equal_the_drop_of_the_estimators_own_score(shop):
    dataset, model = shop
    out = explain(model, "u165", item="stakes", k=10, method="occlusion")
    history = model.user_histories(["u165"])
    code = int(model.item_codes(["stakes"])[0])

    def log_p(keep: np.ndarray) -> float:
        part = SequenceArrays(np.array([0, keep.sum()]), history.items[keep], history.event_types[keep], history.timestamps[keep])
        return torch.log_softmax(model.score_histories(part), 1)[0, code].item()

    n = int(history.lengths[0])
    assert out["n_events"] == n == len(out["events"]) and out["score"] == pytest.approx(log_p(np.ones(n, bool)), abs=1e-5)
    for event in out["events"]:
        keep = np.arange(n) != event["position"]
        assert event["weight"] == pytest.approx(out["score"] - log_p(keep), abs=1e-5)
    weights = [abs(e["weight"]) for e in out["events"]]
    assert weights == sorted(weights, reverse=True) and out["events"][0]["weight"] > 0


def test_default_target_is_the_top_recommendation_and_every_method_explains_the_same_score(shop):
    dataset, model = shop
    top = model.recommend(users=["u160"], k=1)["item_id"][0]
    occlusion = explain(model, "u160", catalog=dataset.catalog, k=2, method="occlusion")
    gradients = explain(model, "u160", catalog=dataset.catalog, k=2, method="integrated_gradients")
    assert occlusion["target"]["item_id"] == gradients["target"]["item_id"] == top
    assert gradients["method"] == "integrated_gradients" and gradients["score"] == pytest.approx(occlusion["score"], abs=1e-4)
    assert len(gradients["events"]) == 2 and json.loads(json.dumps(gradients)) == gradients
    default = explain(model, "u160", catalog=dataset.catalog)
    assert default["method"] == "banzhaf" and default["score"] == pytest.approx(occlusion["score"], abs=1e-6)


def test_a_user_with_one_event_gets_an_explanation(shop):
    dataset, model = shop
    code = model.item_codes(["tent"]).astype(np.int64)
    one = SequenceArrays(np.array([0, 1]), code, np.array([model.event_vocabulary.index("cart") + 2]), np.array([MONDAY]))
    out = explain(model, "new-visitor", history=one, catalog=dataset.catalog)
    assert out["n_events"] == 1 and out["events"][0]["title"] == "Alpine Tent" and np.isfinite(out["events"][0]["weight"])
    assert out["sentence"].startswith("Recommended")


def test_unknown_users_and_items_are_not_found_and_bad_requests_are_config_errors(shop):
    _, model = shop
    with pytest.raises(UnknownUserError, match="nobody") as caught:
        explain(model, "nobody")
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, ShopformerError)
    assert issubclass(UnknownItemError, LookupError) and issubclass(UnknownItemError, ShopformerError)
    with pytest.raises(UnknownItemError, match="no-such-item"):
        explain(model, "u160", item="no-such-item")
    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain(model, "u160", method="shap")
    with pytest.raises(ConfigError, match="task models"):
        explain(model, "u160", task="churn")


def test_task_predictions_are_explained_through_the_whole_task_model(demo):
    dataset, model, predictor = demo
    user = predictor.context.events.group_by("user_id").len().sort(["len", "user_id"])["user_id"][-1]
    out = explain(model, user, task="intent", tasks=predictor, catalog=dataset.catalog, k=3, method="occlusion")
    assert out["target"] == {"task": "intent"} and 0 <= out["score"] <= 1 and out["units"] == "probability"
    assert out["sentence"].startswith("Purchase intent in this session is") and len(out["events"]) == 3
    events = predictor.context.events.filter(pl.col("user_id") == user).drop("position")
    now = predictor.now + 1
    window_start = events.height - out["n_events"]
    event = out["events"][0]
    without = events.filter(pl.int_range(pl.len()) != window_start + event["position"])
    after = predictor.predict_users(without, now, tasks=("intent",))[user]["intent"]
    assert event["weight"] == pytest.approx(out["score"] - after, abs=1e-6)
    assert explain(model, user, task="intent", tasks=predictor)["score"] == pytest.approx(out["score"])
    with pytest.raises(UnknownUserError):
        explain(model, "nobody", task="intent", tasks=predictor)
    with pytest.raises(ConfigError, match="no 'churn' task model"):
        explain(model, user, task="churn", tasks=predictor)


def test_task_gradients_follow_the_task_models_transformer_head(demo):
    dataset, model, predictor = demo
    user = predictor.context.events.group_by("user_id").len().sort(["len", "user_id"])["user_id"][-1]
    gradients = explain(model, user, task="intent", tasks=predictor, method="integrated_gradients", k=3)
    occlusion = explain(model, user, task="intent", tasks=predictor, method="occlusion", k=3)
    assert gradients["score"] == pytest.approx(occlusion["score"]) and "Transformer head" in gradients["note"]
    assert any(e["weight"] != 0 for e in gradients["events"]) and gradients["n_events"] == occlusion["n_events"]
