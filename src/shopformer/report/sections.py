"""The report's sections, each from plain inputs (polars frames, arrays, dicts) to a `Section`.

A section whose input is missing is built by the caller as `Section(..., missing=reason)`; these
functions only ever see data that is there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np
import polars as pl

from shopformer.report import charts
from shopformer.report.markup import Section, paragraph, table

__all__ = ["SECTION_TITLES", "calibration_section", "cohort_section", "funnel_section", "overview_section",
           "predictions_section", "rfm_section", "top_items_section"]

#: Anchor and heading of every section, in page order (the heading stays even when data is missing).
SECTION_TITLES = {
    "overview": "Overview",
    "funnel": "Funnel",
    "cohorts": "Cohort retention",
    "rfm": "RFM grid",
    "segments": "Segments",
    "predictions": "Churn risk and purchase intent",
    "calibration": "Calibration",
    "items": "Top items",
    "anomalies": "Anomalies",
    "explanations": "Example explanations",
}


def _section(anchor: str, *parts: str) -> Section:
    return Section(anchor, SECTION_TITLES[anchor], "\n".join(parts))


def _date(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d")


def _beside(*parts: str) -> str:
    """Charts and tables side by side, wrapping on narrow screens."""
    return '<div class="figures">' + "".join(parts) + "</div>"


def _facts(facts: dict[str, Any]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts.items())
    return f'<dl class="facts">{items}</dl>'


def overview_section(events: pl.DataFrame, meta: dict, source: str, task_info: dict[str, dict]) -> Section:
    """Key figures of the log and the model: sizes, time span, training result, task models."""
    best = next((m for m in meta.get("history", []) if m.get("epoch") == meta.get("best_epoch")), {})
    model = meta.get("model", {})
    facts = {
        "events": f"{events.height:,}", "users": f"{events['user_id'].n_unique():,}",
        "items": f"{events['item_id'].drop_nulls().n_unique():,}",
        "period": f"{_date(events['timestamp'].min())} to {_date(events['timestamp'].max())}"
        if meta.get("time_resolution") != "order" else "order only (no timestamps)",
        "model": f"behaviour Transformer, dim {model.get('dim')}, {model.get('layers')} layer(s), created {meta.get('created', '?')}",
        "next-item NDCG@10 (validation)": f"{best['valid_ndcg@10']:.4f} at epoch {meta['best_epoch']}"
        if "valid_ndcg@10" in best else "not recorded",
        "task models": ", ".join(f"{t} ({i.get('model')})" for t, i in task_info.items()) or "none",
    }
    return _section("overview", paragraph(f"Read from {source}."), _facts(facts))


def funnel_section(funnel: pl.DataFrame) -> Section:
    """Users who did each event type at least once (`analytics.funnel`)."""
    chart = charts.bar_chart(funnel["event_type"].to_list(), funnel["users"].to_list(), title="Users per event type",
                             xlabel="users with at least one such event")
    return _section("funnel", paragraph("How many users reached each step: view, click, favourite, cart, purchase, "
                                        "then the other event types."), _beside(chart, table(funnel)))


def cohort_section(retention: pl.DataFrame) -> Section:
    """Weekly cohorts and the share of each still active k weeks later (`analytics.cohort_retention`)."""
    weeks = [c for c in retention.columns if c.startswith("week_")]
    matrix = retention.select(weeks).to_numpy().astype(float)
    rows = [f"{c} ({n:,})" for c, n in zip(retention["cohort"].to_list(), retention["users"].to_list())]
    chart = charts.heatmap(matrix, rows, [w.removeprefix("week_") for w in weeks], title="Share of each weekly cohort active",
                           xlabel="weeks after the first event", ylabel="cohort (week of first event, users)")
    return _section("cohorts", paragraph("A cohort is the users whose first event fell in that week (UTC, from Monday); "
                                         "blank cells are weeks the log does not reach yet."), chart, table(retention))


def rfm_section(grid: pl.DataFrame) -> Section:
    """Users per recency and frequency score (`analytics.rfm_grid`), with their mean monetary score."""
    matrix = np.full((5, 5), np.nan)
    for r, f, users in grid.select("recency", "frequency", "users").iter_rows():
        matrix[5 - r, f - 1] = users
    chart = charts.heatmap(matrix, [f"R{r}" for r in range(5, 0, -1)], [f"F{f}" for f in range(1, 6)], fmt="{:,.0f}",
                           title="Users by recency and frequency score", xlabel="frequency score", ylabel="recency score")
    return _section("rfm", paragraph("Quintile scores among the users, 5 best: R from the days since the last event, "
                                     "F from the number of purchases, M from their value. Users tied on zero purchases share F1."),
                    _beside(chart, table(grid)))


def predictions_section(scores: dict[str, np.ndarray]) -> Section:
    """Histograms of each binary task's probabilities at the end of the log."""
    chart = charts.histograms(scores, title="Predicted probabilities at the end of the log", xlabel="probability")
    summary = pl.DataFrame({
        "task": list(scores), "scored": [len(v) for v in scores.values()],
        "mean": [round(float(np.mean(v)), 4) for v in scores.values()],
        "median": [round(float(np.median(v)), 4) for v in scores.values()],
        "share_above_0.5": [round(float(np.mean(v > 0.5)), 4) for v in scores.values()],
    })
    return _section("predictions", paragraph("churn: no activity within the horizon, per user; intent: the user's last "
                                             "session ends in a purchase; propensity: a purchase within the horizon."),
                    _beside(chart, table(summary)))


def calibration_section(curves: dict[str, pl.DataFrame], metrics: dict[str, dict]) -> Section:
    """Reliability diagrams of the test period (`analytics.reliability_bins`) and the recorded test metrics."""
    chart = charts.reliability_chart(curves, title="Reliability on the test period")
    rows = [{"task": task, **{k: v for k, v in values.items() if not isinstance(v, list)}} for task, values in metrics.items()]
    lead = paragraph("Observed rate against predicted probability, in ten equal-width bins, on the last period of the "
                     "log, which the models never fitted on. Metrics as recorded when the models were fitted.")
    return _section("calibration", lead, _beside(chart, table(pl.DataFrame(rows))) if rows else chart)


def top_items_section(items: pl.DataFrame) -> Section:
    """The items bought most (`analytics.top_items`)."""
    return _section("items", paragraph("Ranked by purchases, then views; conversion is purchases per view."), table(items))
