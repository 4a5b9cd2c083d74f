"""What a report reads from a bundle: its event log, item table, estimator, task models and segments.

The log is the one the task models were fitted on (`tasks/events.parquet`). A bundle without task
models still has each user's most recent events (the history the recommender reads); the report
then works from those and says so. Loading goes through `predict.insight.BundleInsight`, the one
path the profiles of the CLI and the service take too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.errors import DataError
from shopformer.predict.estimator import Shopformer
from shopformer.predict.insight import BundleInsight
from shopformer.predict.tasks import TaskPredictor
from shopformer.tasks.examples import build_examples

__all__ = ["BINARY_TASKS", "BundleData", "calibration_inputs", "load_bundle_data", "source_description", "task_scores"]

#: The binary tasks whose probabilities the report charts, in the order it shows them.
BINARY_TASKS = ("churn", "intent", "propensity")


@dataclass(frozen=True)
class BundleData:
    """A bundle's parts: its header (`bundle.json`), what its profiles read, and where its log came from."""

    meta: dict
    insight: BundleInsight
    #: Where the events came from, in words (the full task log, or only the recent histories).
    source: str

    @property
    def events(self) -> pl.DataFrame:
        return self.insight.events

    @property
    def catalog(self) -> pl.DataFrame | None:
        return self.insight.catalog

    @property
    def estimator(self) -> Shopformer:
        return self.insight.model

    @property
    def predictor(self) -> TaskPredictor | None:
        return self.insight.predictor


def load_bundle_data(bundle_dir: str | Path) -> BundleData:
    """Reads the bundle folder `bundle_dir`; a folder that is not a bundle is a `DataError`."""
    bundle_dir = Path(bundle_dir)
    insight = BundleInsight.open(bundle_dir)
    if insight.events.is_empty():
        raise DataError("the bundle holds no events to report on", path=str(bundle_dir))
    meta = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
    return BundleData(meta, insight, source_description(insight))


def source_description(insight: BundleInsight) -> str:
    """Where the insight's log came from, in words: the task models' full log, or the recent histories."""
    events, model = insight.events, insight.model
    if insight.predictor is not None:
        return f"the task models' event log ({events.height:,} events)"
    return (f"each user's last {model.max_len} events as the bundle keeps them ({events.height:,} events): "
            "the bundle has no task models, whose full log a report would read")


def task_scores(predictor: TaskPredictor) -> dict[str, pl.DataFrame]:
    """Each binary task's probabilities at the end of the log (`predict_proba`), by task name."""
    return {task: predictor.predict_proba(task) for task in BINARY_TASKS if task in predictor.models}


def calibration_inputs(predictor: TaskPredictor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(labels, calibrated probabilities) of each binary task's test period: out of time, never fitted on."""
    curves = {}
    for task in (t for t in BINARY_TASKS if t in predictor.models):
        test = build_examples(task, predictor.context, predictor.config).split("test")
        if len(test):
            curves[task] = (test.labels, predictor.models[task].predict_proba(test, predictor.context))
    return curves
