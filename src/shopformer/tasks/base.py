"""The contract every behaviour-prediction task and model shares.

A task turns an event log into labelled *examples*: "user u, having done their first
`history_end` events, at time `cutoff`". A model sees only those visible events (the one gate
is `visible_events`); labels come only from events after the cutoff. Every model, baseline or
Transformer, implements `TaskModel`, so the benchmark treats them alike.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from shopformer.data.schema import Catalog, EventLog, TimeResolution
from shopformer.features.users import FeatureTable, user_features

__all__ = ["BINARY_CLASSES", "TASKS", "TaskContext", "TaskExamples", "TaskModel", "example_features", "ordered_events",
           "visible_events"]

#: The tasks, as named in the API, the CLI and the benchmark JSON.
TASKS: tuple[str, ...] = ("intent", "propensity", "item-propensity", "churn", "next-event-type")

#: Class labels of the binary tasks (label 1 = the event happens).
BINARY_CLASSES: tuple[str, ...] = ("no", "yes")

#: Columns every example frame has; tasks add `session_id`, `item_id`, `prefix` where they apply.
EXAMPLE_COLUMNS: dict[str, pl.DataType] = {
    "example_id": pl.Int64(),
    "user_id": pl.String(),
    "history_end": pl.Int64(),
    "cutoff": pl.Int64(),
    "label": pl.Int64(),
    "split": pl.String(),
}


def ordered_events(log: EventLog) -> pl.DataFrame:
    """The log in the one order every task and model uses, with each event's `position`.

    Sorted by user, then time; purchases go last among events sharing a timestamp, so on
    day-granular logs a day's non-purchase events come first. `position` is the 0-based index of
    the event within its user's sequence.
    """
    frame = log.frame.with_columns((pl.col("event_type") == "purchase").alias("_purchase_last"))
    frame = frame.sort(["user_id", "timestamp", "_purchase_last"], maintain_order=True).drop("_purchase_last")
    return frame.with_columns(pl.int_range(pl.len()).over("user_id").cast(pl.Int64).alias("position"))


@dataclass(frozen=True)
class TaskContext:
    """What models may read: the ordered events, the catalog, and the time models may learn up to.

    `events` is `ordered_events(log)`. Anything learned without labels (pre-training, popularity,
    encoders) uses only events with `timestamp < fit_until`, the earliest test cutoff.
    """

    events: pl.DataFrame
    catalog: Catalog | None
    time_resolution: TimeResolution
    fit_until: int

    @classmethod
    def from_log(cls, log: EventLog, catalog: Catalog | None, fit_until: int) -> TaskContext:
        return cls(ordered_events(log), catalog, log.time_resolution, fit_until)

    def training_events(self) -> pl.DataFrame:
        """The events label-free learning may use: those before `fit_until`."""
        return self.events.filter(pl.col("timestamp") < self.fit_until)


@dataclass(frozen=True)
class TaskExamples:
    """Labelled examples of one task: `frame` has `EXAMPLE_COLUMNS` (+ task-specific ones).

    `label` is 0/1 for binary tasks and the index into `classes` for next-event-type.
    `split` is "train", "valid" or "test" (out of time: later splits have later cutoffs).
    """

    task: str
    frame: pl.DataFrame
    classes: tuple[str, ...] = BINARY_CLASSES

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy()

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    def split(self, name: str) -> TaskExamples:
        return TaskExamples(self.task, self.frame.filter(pl.col("split") == name), self.classes)

    def __len__(self) -> int:
        return self.frame.height


def visible_events(context: TaskContext, examples: TaskExamples) -> pl.DataFrame:
    """Every event a model may see for each example: the user's first `history_end` events.

    One row per (example, visible event), with `example_id` first. This is the only gate between
    examples and the log, so no feature can read an event at or after an example's cutoff.
    """
    keys = examples.frame.select("example_id", "user_id", "history_end")
    joined = keys.join(context.events, on="user_id", how="inner")
    visible = joined.filter(pl.col("position") < pl.col("history_end")).drop("history_end")
    return visible.sort(["example_id", "position"])


class TaskModel(Protocol):
    """A model of one task. Binary tasks: `predict_proba` returns P(label = 1), shape `(n,)`;
    next-event-type returns `(n, len(classes))` rows summing to 1.

    `save(directory)` writes the fitted model without pickle (JSON + npz/safetensors, LightGBM's text
    format), including a `model.json` whose `"kind"` names the loader in `tasks.registry.MODEL_LOADERS`.
    """

    name: str

    def fit(self, train: TaskExamples, valid: TaskExamples, context: TaskContext) -> TaskModel: ...

    def predict_proba(self, examples: TaskExamples, context: TaskContext) -> np.ndarray: ...

    def save(self, directory: str | Path) -> Path: ...


#: Recently computed tables: fitting, calibrating and scoring several models read the same examples.
_FEATURE_CACHE: OrderedDict[tuple, FeatureTable] = OrderedDict()
_FEATURE_CACHE_SIZE = 6


def example_features(context: TaskContext, examples: TaskExamples) -> FeatureTable:
    """The hand-crafted features (`features.users`) of `examples` from their visible events only."""
    # Keyed by content, not identity: a rebuilt context or a re-filtered split hits the same entry.
    items = ["item_id"] if "item_id" in examples.frame.columns else []
    rows = examples.frame.select("example_id", "user_id", "history_end", "cutoff", *items)
    key = (int(context.events.hash_rows().sum()), examples.task, rows.hash_rows().to_numpy().tobytes())
    if key not in _FEATURE_CACHE:
        _FEATURE_CACHE[key] = user_features(visible_events(context, examples), examples.frame, context.catalog)
        while len(_FEATURE_CACHE) > _FEATURE_CACHE_SIZE:
            _FEATURE_CACHE.popitem(last=False)
    _FEATURE_CACHE.move_to_end(key)
    return _FEATURE_CACHE[key]
