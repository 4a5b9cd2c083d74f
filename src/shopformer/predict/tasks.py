"""`TaskPredictor`: the fitted task models of a bundle, and the one API that scores users and sessions.

A bundle's `tasks/` folder (no pickle anywhere):

    tasks/tasks.json             format, task config, time resolution, per task: model, classes, metrics
    tasks/<task>/                the calibrated model (`CalibratedModel.save`: model/ + calibration.json)
    tasks/events.parquet         the log the models were fitted on: what `predict_proba` scores by default
    tasks/catalog.parquet        item prices and categories the features read (when there is a catalog)

`predict_proba(task, users=..., sessions=...)` scores the stored log at its end;
`predict_users(events, now)` scores any users' events (the service's live state) at `now`.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from shopformer.artifacts import read_header, write_header
from shopformer.data.prepared import PreparedDataset
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import classification_metrics
from shopformer.models.base import BehaviourModel
from shopformer.tasks.base import TASKS, TaskContext, TaskExamples, TaskModel
from shopformer.tasks.calibrated import CalibratedModel
from shopformer.tasks.examples import (
    DAY,
    TaskConfig,
    build_examples,
    live_context,
    live_examples,
    split_times,
    task_context,
)
from shopformer.tasks.registry import MODEL_FACTORIES, load_model, make_model, shopformer_family
from shopformer.tasks.shared import SharedBehaviour

__all__ = ["TaskPredictor", "behaviour_source", "bundle_shared", "default_model"]

_KIND, _VERSION = "tasks", 1
_CATALOG_COLUMNS = ("item_id", "price", "category")


def default_model() -> str:
    """The Shopformer task model when it is registered, else the LightGBM baseline."""
    return "shopformer" if "shopformer" in MODEL_FACTORIES else "lightgbm"


# The estimator is imported when a Transformer task model first needs it: it is torch-heavy, and the
# LightGBM and logistic task models never do.
def _fit_behaviour(prepared: PreparedDataset, train: dict, model: dict | None) -> BehaviourModel:
    from shopformer.predict.estimator import Shopformer

    return Shopformer(model=model, train=train).fit(prepared)


def _load_behaviour(folder: Path) -> BehaviourModel:
    from shopformer.predict.estimator import Shopformer

    return Shopformer.load(folder)


def behaviour_source(bundle_dir: str | Path | None = None) -> SharedBehaviour:
    """What the task models of one dataset share: a `Shopformer` fitted or loaded when one needs it."""
    return SharedBehaviour(fit=_fit_behaviour, load=_load_behaviour,
                           bundle_dir=None if bundle_dir is None else Path(bundle_dir))


def bundle_shared(bundle_dir: str | Path, model: str) -> SharedBehaviour:
    """What task models fitted onto a bundle share: its folder and, for Shopformer's, its behaviour model."""
    shared = behaviour_source(bundle_dir)
    if shopformer_family(model):
        shared.model = _load_behaviour(Path(bundle_dir))
    return shared


class TaskPredictor:
    """Calibrated task models fitted on one log, ready to score its users or live events."""

    def __init__(self, models: dict[str, TaskModel], classes: dict[str, tuple[str, ...]], config: TaskConfig,
                 context: TaskContext, info: dict[str, dict]) -> None:
        self.models, self.classes, self.config, self.context, self.info = models, classes, config, context, info

    @classmethod
    def fit(cls, dataset: Dataset, tasks: tuple[str, ...] = TASKS, model: str | None = None,
            config: TaskConfig | None = None, shared: SharedBehaviour | None = None) -> TaskPredictor:
        """Fits `model` (default `default_model()`) on every task: train examples, calibrated on valid.

        The test split is scored once, for the record in `info` (it is never used for a choice).
        """
        config, model, shared = config or TaskConfig(), model or default_model(), shared or behaviour_source()
        context = task_context(dataset.events, dataset.catalog, config)
        # The horizon the models learned, stated explicitly (the default depends on the log's span);
        # a log of hours keeps its derived horizon of minutes, which `horizon_days` cannot state.
        horizon = split_times(context.events, context.time_resolution, config).horizon
        if horizon % DAY == 0:
            config = config.model_copy(update={"horizon_days": horizon // DAY})
        models, classes, info = {}, {}, {}
        for task in tqdm(tasks, desc=f"fitting {model} task models", unit="task"):
            examples = build_examples(task, context, config)
            fitted = CalibratedModel(make_model(model, context, shared))
            fitted.fit(examples.split("train"), examples.split("valid"), context)
            test = examples.split("test")
            metrics = classification_metrics(test.labels, fitted.predict_proba(test, context))
            models[task], classes[task] = fitted, examples.classes
            info[task] = {"model": model, "n_train": len(examples.split("train")), "test_metrics": metrics}
        return cls(models, classes, config, context, info)

    # --- scoring -------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The end of the stored log: the time `predict_proba` scores at."""
        return int(self.context.events["timestamp"].max())

    def predict_proba(self, task: str, users: list[str] | None = None, sessions: list[str] | None = None) -> pl.DataFrame:
        """Probabilities of `task` for `users` (default: all) or, for intent, `sessions`, at the log's end.

        One row per user (intent: per session; item-propensity: per user and candidate item):
        `user_id, [session_id | item_id], cutoff, probability` for binary tasks, one `p_<class>`
        column per event type for next-event-type.
        """
        self._check_task(task)
        if sessions is not None and task != "intent":
            raise ConfigError(f"sessions= applies to the intent task, not {task!r}; pass users=")
        if users is not None:
            known = set(self.context.events["user_id"].unique().to_list())
            unknown = [u for u in users if u not in known]
            if unknown:
                raise DataError(f"user {unknown[0]!r} has no events in the bundle's task data", column="user_id")
        examples = live_examples(task, self.context, self.now, self.config, users=users, sessions=sessions)
        return self._scored(task, examples, self.context)

    def predict_users(self, events: pl.DataFrame, now: int, tasks: tuple[str, ...] | None = None) -> dict[str, dict]:
        """Every task's prediction for each user in `events` (their events up to `now`, unix seconds).

        Returns `{user_id: {task: value}}`: a probability for binary tasks, `{event_type: p}` for
        next-event-type, `{item_id: p}` for item-propensity (the user's recent candidate items).
        """
        try:
            log = EventLog(events, self.context.time_resolution)
        except DataError as exc:
            raise DataError(f"events to score: {exc}") from None
        context = live_context(log, self.context.catalog, self.config)
        out: dict[str, dict] = {}
        for task in tasks or tuple(self.models):
            self._check_task(task)
            table = self._scored(task, live_examples(task, context, now, self.config), context)
            for row in table.iter_rows(named=True):
                out.setdefault(row["user_id"], {})
                _add_prediction(out[row["user_id"]], task, row, self.classes[task])
        return out

    def _check_task(self, task: str) -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        if task not in self.models:
            raise ConfigError(f"the bundle has no {task!r} model; fit it with `shopformer train-tasks --tasks {task}`")

    def _scored(self, task: str, examples: TaskExamples, context: TaskContext) -> pl.DataFrame:
        keys = [c for c in ("user_id", "session_id", "item_id", "cutoff") if c in examples.frame.columns]
        if len(examples) == 0:
            return examples.frame.select(keys)
        probs = self.models[task].predict_proba(examples, context)
        table = examples.frame.select(keys)
        if probs.ndim == 1:
            return table.with_columns(probability=pl.Series(np.round(probs, 6)))
        return table.with_columns(pl.Series(f"p_{c}", np.round(probs[:, k], 6)) for k, c in enumerate(self.classes[task]))

    # --- saving --------------------------------------------------------------------------------

    def save(self, bundle_dir: str | Path) -> Path:
        """Writes the `tasks/` folder of `bundle_dir`, replacing any earlier one: its models were fitted
        on another log, with another config, so they are not mixed with these."""
        folder = Path(bundle_dir) / "tasks"
        if folder.is_dir():
            _read_meta(folder)  # only ever remove a folder this class wrote
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for task, model in self.models.items():
            model.save(folder / task)
        self.context.events.drop("position").write_parquet(folder / "events.parquet")
        if self.context.catalog is not None:
            catalog = self.context.catalog.frame
            catalog.select([c for c in _CATALOG_COLUMNS if c in catalog.columns]).write_parquet(folder / "catalog.parquet")
        meta = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
                "time_resolution": self.context.time_resolution, "task_config": self.config.model_dump(mode="json"),
                "tasks": {task: {**self.info[task], "classes": list(self.classes[task])} for task in self.models}}
        write_header(folder / "tasks.json", _KIND, _VERSION, indent=1, **meta)
        return folder

    @classmethod
    def load(cls, bundle_dir: str | Path, shared: SharedBehaviour | None = None) -> TaskPredictor:
        """The task models saved in `bundle_dir/tasks/`; a clear error when there are none."""
        folder = Path(bundle_dir) / "tasks"
        meta = _read_meta(folder)
        shared = shared or behaviour_source(bundle_dir)
        shared.bundle_dir = shared.bundle_dir or Path(bundle_dir)
        models = {task: CalibratedModel.load(folder / task, load_model(folder / task / "model", shared))
                  for task in meta["tasks"]}
        catalog_path = folder / "catalog.parquet"
        catalog = Catalog(pl.read_parquet(catalog_path)) if catalog_path.is_file() else None
        log = EventLog(pl.read_parquet(folder / "events.parquet"), meta["time_resolution"])
        config = TaskConfig.from_dict(meta["task_config"])
        classes = {task: tuple(entry["classes"]) for task, entry in meta["tasks"].items()}
        info = {task: {k: v for k, v in entry.items() if k != "classes"} for task, entry in meta["tasks"].items()}
        return cls(models, classes, config, live_context(log, catalog, config), info)


def _add_prediction(scores: dict, task: str, row: dict, classes: tuple[str, ...]) -> None:
    if task == "item-propensity":
        scores.setdefault(task, {})[row["item_id"]] = row["probability"]
    elif task == "next-event-type":
        scores[task] = {c: row[f"p_{c}"] for c in classes}
    else:
        scores[task] = row["probability"]


def _read_meta(folder: Path) -> dict:
    path = folder / "tasks.json"
    if not path.is_file():
        raise DataError("the bundle has no task models (no tasks/tasks.json): run `shopformer train-tasks` first",
                        path=str(folder.parent))
    return read_header(path, _KIND, _VERSION, what="task model folder")

