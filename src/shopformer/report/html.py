"""`write_report(bundle, out)`: one self-contained HTML page about a bundle's shop, users and models.

    from shopformer.report.html import write_report
    write_report("shopformer-output/quickstart/bundle", "report.html")

The page holds everything inline (styles, charts as PNG data URIs) and opens offline. Each section
is built from plain inputs (`report.sections`, `report.insight_sections`); one whose data the bundle
lacks (no task models, too few users to segment) says so on the page instead of failing the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from shopformer.errors import ShopformerError
from shopformer.insight.anomaly import score_users
from shopformer.predict.explain import explain
from shopformer.report import analytics
from shopformer.report.inputs import BundleData, calibration_inputs, load_bundle_data, task_scores
from shopformer.report.insight_inputs import user_insight
from shopformer.report.insight_sections import anomalies_section, explanations_section, segments_section
from shopformer.report.markup import Section, page
from shopformer.report.sections import (
    SECTION_TITLES,
    calibration_section,
    cohort_section,
    funnel_section,
    overview_section,
    predictions_section,
    rfm_section,
    top_items_section,
)

__all__ = ["build_report", "write_report"]

logger = logging.getLogger(__name__)

#: Most users on the segment map (a fixed sample beyond that keeps the page light).
MAP_USERS = 20_000
#: Tasks with an example explanation: the user each one scores highest.
_EXPLAINED_TASKS = ("churn", "intent")
_NO_TASKS = "the bundle has no task models: fit them with `shopformer train-tasks --bundle DIR`"


def write_report(bundle_dir: str | Path, out: str | Path) -> Path:
    """Writes the report of the bundle folder `bundle_dir` to the file `out` (folders created)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(bundle_dir), encoding="utf-8")
    return out


def build_report(bundle_dir: str | Path) -> str:
    """The report page of the bundle folder `bundle_dir`, as one HTML string."""
    # One BLAS/OpenMP thread: k-means and the detectors' small solves ran 30x slower on two busy cores
    # when their threads contended for them.
    with threadpool_limits(limits=1):
        return _build_report(Path(bundle_dir))


def _build_report(bundle_dir: Path) -> str:
    data = load_bundle_data(bundle_dir)
    scores = task_scores(data.predictor) if data.predictor is not None else {}
    insight = _guarded("segments", lambda: user_insight(data.insight, scores.get("churn"), max_users=MAP_USERS))
    anomalies = _guarded("anomalies", lambda: score_users(data.events))
    sections = [
        overview_section(data.events, data.meta, data.source, data.predictor.info if data.predictor else {}),
        _built("funnel", lambda: funnel_section(analytics.funnel(data.events))),
        _built("cohorts", lambda: _cohorts(data)),
        _from_result("rfm", insight, lambda i: rfm_section(analytics.rfm_grid(i.profiles))),
        _from_result("segments", insight, lambda i: segments_section(i.points, i.summary)),
        _with_tasks("predictions", data, lambda: _predictions(scores)),
        _with_tasks("calibration", data, lambda: _calibration(data)),
        _built("items", lambda: top_items_section(analytics.top_items(data.events, data.catalog))),
        _from_result("anomalies", anomalies, anomalies_section),
        _built("explanations", lambda: explanations_section(_example_explanations(data, scores, anomalies))),
    ]
    subtitle = f"Bundle {bundle_dir.resolve().name}, model created {data.meta.get('created', 'unknown')}"
    return page("Shopformer report", subtitle, sections)


def _guarded(anchor: str, build: Callable):
    """`build()`, or the reason it cannot be built (a `ShopformerError`: data the bundle lacks) as a str."""
    try:
        return build()
    except ShopformerError as exc:
        logger.warning("report section %s left out: %s", anchor, exc)
        return str(exc)


def _built(anchor: str, build: Callable[[], Section]) -> Section:
    result = _guarded(anchor, build)
    return result if isinstance(result, Section) else Section(anchor, SECTION_TITLES[anchor], missing=result)


def _from_result(anchor: str, result, build: Callable) -> Section:
    """The section `build(result)` of a shared input, or the reason `_guarded` gave for the input's absence."""
    if isinstance(result, str):
        return Section(anchor, SECTION_TITLES[anchor], missing=result)
    return _built(anchor, lambda: build(result))


def _with_tasks(anchor: str, data: BundleData, build: Callable[[], Section]) -> Section:
    if data.predictor is None:
        return Section(anchor, SECTION_TITLES[anchor], missing=_NO_TASKS)
    return _built(anchor, build)


def _cohorts(data: BundleData) -> Section:
    if data.meta.get("time_resolution") == "order":
        raise ShopformerError("the log only orders events (no timestamps), so it has no weeks to make cohorts of")
    return cohort_section(analytics.cohort_retention(data.events))


def _calibration(data: BundleData) -> Section:
    inputs = calibration_inputs(data.predictor)
    curves = {task: analytics.reliability_bins(labels, np.asarray(probs)) for task, (labels, probs) in inputs.items()}
    if not curves:
        raise ShopformerError("the log's test period holds no example of a binary task")
    metrics = {task: info.get("test_metrics", {}) for task, info in data.predictor.info.items() if task in curves}
    return calibration_section(curves, metrics)


def _predictions(scores: dict[str, pl.DataFrame]) -> Section:
    shown = {task: frame["probability"].to_numpy() for task, frame in scores.items() if frame.height}
    if not shown:
        raise ShopformerError("the task models scored no user at the end of the log")
    return predictions_section(shown)


def _example_explanations(data: BundleData, scores: dict[str, pl.DataFrame], anomalies: pl.DataFrame | str) -> list[dict]:
    """The top recommendation of the most active user not flagged as anomalous (the most active users are
    often bots), and the user each explained task scores highest."""
    flagged = set() if isinstance(anomalies, str) else set(anomalies.filter(pl.col("flagged"))["user_id"].to_list())
    active = data.events.group_by("user_id").len().sort(["len", "user_id"], descending=[True, False])["user_id"]
    known = set(data.estimator.known_users()) - flagged
    chosen = next((u for u in active if u in known), None)
    documents = [] if chosen is None else [explain(data.estimator, chosen)]
    for task in (t for t in _EXPLAINED_TASKS if t in scores and scores[t].height):
        top = scores[task].sort("probability", descending=True)["user_id"][0]
        documents.append(explain(data.estimator, top, task=task, tasks=data.predictor))
    if not documents:
        raise ShopformerError("no user has a history the model knows to explain")
    return documents
