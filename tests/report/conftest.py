"""Two tiny bundles of one demo shop, trained once per test session: with and without task models."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import torch

from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer
from shopformer.predict.tasks import TaskPredictor

#: A one-epoch, ids-only Transformer: seconds to fit, and every report section still has data.
_MODEL = {"use_text": False, "use_attributes": False, "use_price": False, "dim": 16, "layers": 1, "heads": 1}
_TRAIN = {"epochs": 1, "progress": False, "seed": 3, "num_threads": 1}


@dataclass(frozen=True)
class ReportBundles:
    """`plain` has the recommender only; `tasks` adds logistic intent, propensity and churn models."""

    plain: Path
    tasks: Path
    events: pl.DataFrame


@pytest.fixture(scope="session")
def report_bundles(tmp_path_factory) -> ReportBundles:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report-bundles")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=150, n_items=60, days=21, seed=5))
    dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
    prepared = prepare(dataset, PrepareConfig())
    Shopformer(model=_MODEL, train=_TRAIN).fit(prepared).save(root / "plain")
    shutil.copytree(root / "plain", root / "tasks")
    TaskPredictor.fit(dataset, tasks=("intent", "propensity", "churn"), model="logistic").save(root / "tasks")
    return ReportBundles(root / "plain", root / "tasks", prepared.events.frame)
