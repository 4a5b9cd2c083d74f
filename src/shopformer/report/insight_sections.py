"""The report's sections about users: segments, anomalies and example explanations (plain inputs in)."""

from __future__ import annotations

from html import escape
from typing import Any

import polars as pl

from shopformer.report import charts
from shopformer.report.markup import Section, paragraph, table
from shopformer.report.sections import SECTION_TITLES

__all__ = ["anomalies_section", "explanations_section", "segments_section"]


def segments_section(points: pl.DataFrame, summary: pl.DataFrame) -> Section:
    """The segment map (`x, y, segment_name` per user) and one row per segment (`Segments.describe`)."""
    chart = charts.scatter_map(points["x"].to_numpy(), points["y"].to_numpy(), points["segment_name"].to_list(),
                               title="Users on the segment map")
    lead = paragraph("k-means over each user's recency, frequency, monetary value, activity and conversion together "
                     "with the behaviour model's user vector; the map is the first principal plane of those features. "
                     "Names are read off each segment's traits against the whole user base.")
    shown = summary.select([c for c in summary.columns if c not in ("segment", "description")])
    sentences = "".join(f"<li><b>{escape(name)}</b>: {escape(text)}</li>"
                        for name, text in summary.select("name", "description").iter_rows())
    return Section("segments", SECTION_TITLES["segments"],
                   "\n".join([lead, chart, table(shown), f'<ul class="descriptions">{sentences}</ul>']))


def anomalies_section(scores: pl.DataFrame, shown: int = 15) -> Section:
    """The flagged users of `insight.anomaly.score_users` (`user_id, anomaly_score, flagged, reasons`), highest first."""
    flagged = scores.filter(pl.col("flagged")).sort("anomaly_score", descending=True)
    chart = charts.histograms({"all users": scores["anomaly_score"].to_numpy()}, title="Anomaly scores", xlabel="score")
    lead = paragraph(f"{flagged.height:,} of {scores.height:,} users flagged as likely bots, abuse or fraud: unsupervised "
                     "detectors over each user's pace, sessions, purchases and spend, scored against everyone else.")
    rows = flagged.head(shown).with_columns(pl.col("anomaly_score").round(4), pl.col("reasons").list.join("; "))
    return Section("anomalies", SECTION_TITLES["anomalies"], "\n".join([lead, chart, table(rows.drop("flagged"))]))


def explanations_section(explanations: list[dict[str, Any]]) -> Section:
    """Documents of `predict.explain.explain`: each one's sentence, its most influential events and groups."""
    parts = [paragraph("Why a user got a recommendation or a prediction: each event's weight is how much leaving it out "
                       "lowers the score (occlusion); groups are attribute values whose events count together.")]
    for document in explanations:
        target = document.get("target", {})
        what = target.get("task") or f"recommendation of {target.get('title') or target.get('item_id')}"
        parts.append(f"<h3>User {escape(str(document['user_id']))}: {escape(str(what))} "
                     f"(score {document['score']:.4g}, {escape(document['units'])})</h3>")
        parts.append(f"<p>{escape(document['sentence'])}</p>")
        events = pl.DataFrame(document["events"]).drop("position", strict=False)
        if "timestamp" in events.columns:
            events = events.with_columns(pl.from_epoch("timestamp", time_unit="s").dt.strftime("%Y-%m-%d %H:%M"))
        parts.append('<div class="figures">' + table(events.select([c for c in events.columns if events[c].null_count() < events.height]))
                     + (table(pl.DataFrame(document["groups"])) if document.get("groups") else "") + "</div>")
    return Section("explanations", SECTION_TITLES["explanations"], "\n".join(parts))
