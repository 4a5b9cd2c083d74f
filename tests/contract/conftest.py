"""Tiny shared data for the estimator contract, and the hook that wires the contract classes up.

* `tiny_shop`: a deterministic 40-user, 25-item event log built in memory, prepared once; the
  next-item models (Shopformer and the baselines) all fit on it and are probed on the same histories.
* `task_data`: a 120-user demo shop with its churn examples, plus the edge-case examples (users never
  seen, one-event and empty histories) and one behaviour model pre-trained for all Shopformer task models.
* `pytest_generate_tests` gives each contract class its own `bad_input` cases (`BAD_INPUTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest

from shopformer.data.codes import FIRST_CODE
from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare
from shopformer.data.schema import Dataset, EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.runtime import torch_threads
from shopformer.tasks.base import TaskContext, TaskExamples

#: Torch threads the process runs on around every fit and prediction of the contract; every model is
#: configured for one thread, so a model that does not restore the setting is caught.
OUTER_THREADS = 2
TINY_MODEL = {"dim": 16, "layers": 1, "use_text": False}
TINY_TRAIN = {"epochs": 2, "progress": False, "num_threads": 1}


def outer_threads(n: int = OUTER_THREADS):
    """The process runs on `n` torch threads inside the block (the caller's setting a model must restore)."""
    return torch_threads(n)


# ----------------------------------------------------------------------------- next-item data


@dataclass(frozen=True)
class TinyShop:
    """The next-item models' data: `arrays` (CSR, codes 2.. real items) over `n_items` codes, and
    `probe`: six training histories of lengths 4 to 9 with event types and times, scored by every check."""

    dataset: Dataset
    prepared: PreparedDataset
    arrays: SequenceArrays
    n_items: int
    probe: SequenceArrays

    @property
    def real_codes(self) -> set[int]:
        return set(range(FIRST_CODE, self.n_items))


def tiny_event_log(n_users: int = 40, n_items: int = 25) -> EventLog:
    """User `u` walks the items with stride `1 + u % 3` from a seeded start: 4 to 9 events each."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        start, t0 = int(rng.integers(0, n_items)), 1_700_000_000 + 1000 * u
        for j in range(4 + u % 6):
            item = (start + j * (1 + u % 3)) % n_items
            rows.append((f"u{u:03d}", f"i{item:03d}", t0 + 60 * j, "cart" if j % 3 == 0 else "view"))
    schema = {"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "event_type": pl.String}
    return EventLog(pl.DataFrame(rows, schema=schema, orient="row"))


@pytest.fixture(scope="session")
def tiny_shop() -> TinyShop:
    dataset = Dataset("contract-tiny", tiny_event_log())
    prepared = prepare(dataset, PrepareConfig())
    arrays = prepared.arrays()
    n_items = len(prepared.item_encoder.classes_) + FIRST_CODE
    return TinyShop(dataset, prepared, arrays, n_items, arrays.rows(np.arange(6)))


# ----------------------------------------------------------------------------- task data


@dataclass(frozen=True)
class TaskData:
    """The task models' data: churn examples of a small demo shop and edge cases of them.

    `unseen`/`unseen_context`: test examples of four users renamed to ids no model has seen (their
    events renamed alike); `one_event`/`empty`: test examples cut to the first event / to no event.
    `shared` holds the behaviour model pre-trained once for every Shopformer task model.
    """

    context: TaskContext
    train: TaskExamples
    valid: TaskExamples
    test: TaskExamples
    unseen: TaskExamples
    unseen_context: TaskContext
    one_event: TaskExamples
    empty: TaskExamples
    shared: Any  # shopformer.tasks.shared.SharedBehaviour


def _with_frame(examples: TaskExamples, frame: pl.DataFrame) -> TaskExamples:
    return TaskExamples(examples.task, frame, examples.classes)


@pytest.fixture(scope="session")
def task_data(tmp_path_factory) -> TaskData:
    from shopformer.data.ingest import ingest_files
    from shopformer.data.synth import DemoShopConfig, generate_demo_shop
    from shopformer.predict.tasks import behaviour_source
    from shopformer.tasks.examples import build_examples, task_context
    from shopformer.tasks.transformer_models import pretrained_behaviour_model

    files = generate_demo_shop(tmp_path_factory.mktemp("contract-shop"),
                               DemoShopConfig(n_users=120, n_items=60, days=21, seed=5))
    dataset = ingest_files(files.events, files.catalog, name="contract-demo").dataset
    context = task_context(dataset.events, dataset.catalog)
    churn = build_examples("churn", context)
    test = churn.split("test")
    users = test.frame["user_id"].unique().sort().head(4).to_list()
    renamed = {u: f"never-seen-{u}" for u in users}
    unseen_events = context.events.with_columns(pl.col("user_id").replace(renamed))
    unseen_context = TaskContext(unseen_events, context.catalog, context.time_resolution, context.fit_until)
    unseen = test.frame.filter(pl.col("user_id").is_in(users)).with_columns(pl.col("user_id").replace(renamed))
    first = context.events.filter(pl.col("position") == 0).select("user_id", first_time=pl.col("timestamp"))
    one_event = (test.frame.head(3).join(first, on="user_id", maintain_order="left")
                 .with_columns(history_end=pl.lit(1, pl.Int64), cutoff=pl.col("first_time") + 60).drop("first_time"))
    empty = test.frame.head(3).with_columns(history_end=pl.lit(0, pl.Int64))
    shared = behaviour_source()
    with outer_threads():
        pretrained_behaviour_model(context, shared, train=TINY_TRAIN, model=TINY_MODEL)
    return TaskData(context, churn.split("train"), churn.split("valid"), test, _with_frame(test, unseen),
                    unseen_context, _with_frame(test, one_event), _with_frame(test, empty), shared)


# ----------------------------------------------------------------------------- hooks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each contract class's own bad-input cases, one test per case (named by the case)."""
    if "bad_input" in metafunc.fixturenames:
        cases = getattr(metafunc.cls, "BAD_INPUTS", ())
        metafunc.parametrize("bad_input", [pytest.param(case, id=case.name) for case in cases])
