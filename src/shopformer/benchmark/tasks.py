"""The task benchmark: every task model on the same out-of-time examples of one dataset, in one run.

Protocol: examples and splits of `tasks.examples` (train cut-offs, one valid and one test period
of one horizon each); each model is fitted on train, tuned/early-stopped on valid, then calibrated
on valid by the same `CalibratedModel` wrapper (Platt or isotonic by cross-validated log-loss;
temperature for next-event-type), and scored on valid and test. AUC intervals: percentile bootstrap
of the test examples. On the demo shop the generator's true purchase probability of each session
is scored on the same intent examples (`model = "ground-truth"`): the best AUC any model can reach.

The JSON (`run_task_benchmark`'s return value): `{"dataset", "protocol", "machine", "versions",
"wall_seconds", "results": [{"task", "model", "split", "metrics": {"auc", "pr_auc", "logloss", "brier", "ece",
"auc_ci"}, "metrics_uncalibrated", "base_rate", "n_examples", "fit_seconds", "auc_by_prefix" (intent)}],
"targets"}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from shopformer.data.schema import Dataset
from shopformer.errors import ConfigError
from shopformer.evaluate.binary import (
    base_rate,
    classification_metrics,
    reliability_plot,
    roc_auc,
)
from shopformer.predict.tasks import behaviour_source
from shopformer.runtime import machine_info, matmul_gflops, versions
from shopformer.tasks.base import TASKS, TaskContext, TaskExamples
from shopformer.tasks.calibrated import CalibratedModel
from shopformer.tasks.examples import (
    DAY,
    MINUTE,
    TaskConfig,
    build_examples,
    split_times,
    task_context,
)
from shopformer.tasks.registry import (
    MODEL_FACTORIES,
    SharedBehaviour,
    make_model,
    shopformer_family,
)

__all__ = ["PROTOCOL", "run_task_benchmark", "target_summary"]

logger = logging.getLogger(__name__)

PROTOCOL = {
    "examples": "labelled at cut-off times; features only from the user's events before the cut-off, labels only from after",
    "split": "out of time: train cut-offs end their label windows before the valid period, valid before the test period",
    "calibration": "fitted on valid for every model alike (Platt or isotonic by 5-fold CV log-loss; temperature for next-event-type)",
    "metrics": "after calibration; metrics_uncalibrated: the model's own probabilities",
    "auc_ci": "95% percentile bootstrap over test examples",
    "multi_class": "next-event-type: macro one-vs-rest AUC and PR-AUC, multi-class log-loss, Brier summed over classes, top-label ECE",
}
GROUND_TRUTH = "ground-truth"


def run_task_benchmark(
    dataset: Dataset,
    *,
    tasks: Sequence[str] = TASKS,
    models: Sequence[str] | None = None,
    config: TaskConfig | None = None,
    session_truth: pl.DataFrame | None = None,
    plot_dir: str | Path | None = None,
    resamples: int = 200,
    on_result: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Fits and scores `models` (default: every registered one) on `tasks` of `dataset`.

    `session_truth` (columns `session_id`, `true_purchase_probability`) adds the ground-truth row
    to intent; `plot_dir` receives a reliability diagram per binary task.
    """
    models = list(models or MODEL_FACTORIES)
    _check_names(tasks, models)
    config = config or TaskConfig()
    started = time.perf_counter()
    context = task_context(dataset.events, dataset.catalog, config)
    shared = behaviour_source()
    results = []
    progress = tqdm(total=len(tasks) * len(models), desc="task models", unit="fit")
    for task in tasks:
        examples = build_examples(task, context, config)
        task_results, curves = [], {}
        for name in models:
            progress.set_postfix_str(f"{task}: {name}")
            scored, curves[name] = _fit_and_score(name, examples, context, shared, resamples)
            task_results += scored
            progress.update()
        if task == "intent" and session_truth is not None:
            truth, curves[GROUND_TRUTH] = _ground_truth(examples.split("test"), session_truth, resamples)
            task_results.append(truth)
        if plot_dir is not None and examples.is_binary:
            reliability_plot(curves, Path(plot_dir) / f"reliability_{task}.png", f"{task} (test, calibrated)")
        for result in task_results:
            if on_result is not None:
                on_result(result)
        results += task_results
    progress.close()
    machine = machine_info() | {"matmul_gflops": round(matmul_gflops(), 1)}
    return {"dataset": _dataset_info(dataset, context, config), "protocol": PROTOCOL, "machine": machine,
            "versions": versions(), "wall_seconds": round(time.perf_counter() - started, 1), "results": results,
            "targets": target_summary(results)}


def _check_names(tasks: Sequence[str], models: Sequence[str]) -> None:
    unknown_tasks = [t for t in tasks if t not in TASKS]
    if unknown_tasks:
        raise ConfigError(f"unknown task(s) {unknown_tasks}; choose from {list(TASKS)}")
    unknown = [m for m in models if m not in MODEL_FACTORIES]
    if unknown:
        raise ConfigError(f"unknown task model(s) {unknown}; choose from {list(MODEL_FACTORIES)}")


def _fit_and_score(name: str, examples: TaskExamples, context: TaskContext, shared: SharedBehaviour, resamples: int):
    """Valid and test results of one model on one task, and its calibrated test predictions."""
    started = time.perf_counter()
    model = CalibratedModel(make_model(name, context, shared))
    model.fit(examples.split("train"), examples.split("valid"), context)
    seconds = round(time.perf_counter() - started, 1)
    results, test_curve = [], None
    for split in ("valid", "test"):
        part = examples.split(split)
        # Valid was already scored to fit the calibrator: reuse those probabilities.
        raw = model.valid_proba if split == "valid" else model.predict_uncalibrated(part, context)
        probs = model.calibrator.transform(raw)
        results.append({
            "task": examples.task, "model": name, "split": split,
            "metrics": classification_metrics(part.labels, probs, resamples),
            "metrics_uncalibrated": classification_metrics(part.labels, raw, resamples=0 if split == "valid" else resamples),
            "base_rate": base_rate(part.labels, len(examples.classes)), "n_examples": len(part),
            "fit_seconds": seconds, "calibration": model.calibrator.chosen_method, **_by_prefix(part, probs),
        })
        test_curve = (part.labels, probs)
    logger.info("%s %s: test AUC %.4f", examples.task, name, results[-1]["metrics"]["auc"])
    return results, test_curve


def _ground_truth(test: TaskExamples, session_truth: pl.DataFrame, resamples: int):
    """The generator's true purchase probability of each test session, scored like a model."""
    truth = test.frame.join(session_truth.select("session_id", "true_purchase_probability"), on="session_id",
                            how="left", maintain_order="left")
    probs = truth["true_purchase_probability"].to_numpy()
    if np.isnan(probs).any() or truth["true_purchase_probability"].null_count():
        raise ConfigError("the ground truth lacks some of the log's sessions: is it the same demo shop?")
    result = {"task": "intent", "model": GROUND_TRUTH, "split": "test",
              "metrics": classification_metrics(test.labels, probs, resamples),
              "base_rate": base_rate(test.labels), "n_examples": len(test), **_by_prefix(test, probs)}
    return result, (test.labels, probs)


def _by_prefix(examples: TaskExamples, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """Intent: AUC after each prefix length (how early the purchase becomes predictable)."""
    if "prefix" not in examples.frame.columns:
        return {}
    prefixes = examples.frame["prefix"].to_numpy()
    return {"auc_by_prefix": {p: round(roc_auc(examples.labels[prefixes == p], probs[prefixes == p]), 4)
                              for p in dict.fromkeys(prefixes)}}


def target_summary(results: list[dict]) -> list[dict]:
    """Per task: the best Shopformer model by validation AUC against LightGBM on test, and its ECE."""
    summary = []
    for task in dict.fromkeys(r["task"] for r in results):
        rows = {(r["model"], r["split"]): r["metrics"] for r in results if r["task"] == task}
        family = [m for m, s in rows if s == "valid" and shopformer_family(m)]
        entry: dict[str, Any] = {"task": task}
        if family and ("lightgbm", "test") in rows:
            chosen = max(family, key=lambda m: rows[(m, "valid")]["auc"])
            test = rows[(chosen, "test")]
            entry |= {"shopformer_model": chosen, "shopformer_auc": test["auc"], "lightgbm_auc": rows[("lightgbm", "test")]["auc"],
                      "auc_delta": round(test["auc"] - rows[("lightgbm", "test")]["auc"], 4),
                      "auc_target_met": test["auc"] >= rows[("lightgbm", "test")]["auc"] + 0.02,
                      "ece": test["ece"], "ece_target_met": test["ece"] <= 0.02}
            if (GROUND_TRUTH, "test") in rows:
                truth = rows[(GROUND_TRUTH, "test")]["auc"]
                entry |= {"ground_truth_auc": truth, "ground_truth_target_met": test["auc"] >= truth - 0.02}
        summary.append(entry)
    return summary


def _dataset_info(dataset: Dataset, context: TaskContext, config: TaskConfig) -> dict[str, Any]:
    times = split_times(context.events, context.time_resolution, config)
    iso = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {
        "name": dataset.name, "events": context.events.height, "users": context.events["user_id"].n_unique(),
        "items": context.events["item_id"].n_unique(), "time_resolution": context.time_resolution,
        **_horizon(times.horizon), "valid_start": iso(times.valid_start), "test_start": iso(times.test_start),
        "end": iso(times.end), "task_config": config.model_dump(mode="json"), "source": dataset.info.get("paths", {}),
    }


def _horizon(seconds: int) -> dict[str, int]:
    """The label window in days, or in minutes on a log of hours (whose horizon is not whole days)."""
    return {"horizon_days": seconds // DAY} if seconds % DAY == 0 else {"horizon_minutes": seconds // MINUTE}
