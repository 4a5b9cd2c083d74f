"""`shopformer profile` and `shopformer segments`: who the bundle's users are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel

from shopformer.cli.common import console, reports_errors
from shopformer.cli.report import show_table
from shopformer.errors import ConfigError

__all__ = ["PROFILE_EXAMPLES", "SEGMENTS_EXAMPLES", "profile", "segments"]

PROFILE_EXAMPLES = """[bold]Examples[/]\n
  shopformer profile --bundle shopformer-output/quickstart/bundle --user u00001\n
  shopformer profile --bundle shopformer-output/quickstart/bundle --all --out profiles.parquet
"""
SEGMENTS_EXAMPLES = """[bold]Examples[/]\n
  shopformer segments --bundle shopformer-output/quickstart/bundle            # k chosen on the data\n
  shopformer segments --bundle shopformer-output/quickstart/bundle --k 5
"""

BundleOpt = Annotated[Path, typer.Option("--bundle", help="Model bundle (shopformer train / quickstart).")]


@reports_errors
def profile(
    bundle: BundleOpt,
    users: Annotated[Optional[list[str]], typer.Option("--user", help="User id, repeatable: a readable card each.")] = None,
    every_user: Annotated[bool, typer.Option("--all", help="Profile every user of the bundle's log.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the profiles as Parquet.")] = None,
) -> None:
    """Profiles: RFM, lifecycle stage, tastes, price level, rhythm, predictions, segment and next items."""
    from shopformer.predict.insight import BundleInsight

    if bool(users) == every_user:
        raise ConfigError("give --user U (repeatable) or --all")
    table = BundleInsight.open(bundle).profiles(None if every_user else users)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(out)
        console.print(f"[green]{table.height:,} profiles written to {out}[/]")
    if not every_user:
        for row in table.iter_rows(named=True):
            console.print(profile_card(row))
    elif out is None:
        show_table(table.drop("user_vector", "lifecycle_rule").head(20), "Profiles (first 20; --out FILE for all)")


def profile_card(row: dict) -> Panel:
    """One user's profile as a readable card."""
    def names(entries: list[dict] | None) -> str:
        return ", ".join(f"{e['name']} {e['share']:.0%}" for e in entries or []) or "-"

    lines = [
        f"[bold]{row['lifecycle']}[/]  RFM {row['rfm']}  ·  {row['events']} events, {row['purchases']} purchases, "
        f"{row['monetary']:,.2f} spent, last seen {row['recency_days']:g} days ago",
        f"categories: {names(row.get('top_categories'))}",
        f"brands:     {names(row.get('top_brands'))}",
        f"price level: {row.get('price_level') or '-'}"
        + (f" (percentile {row['price_percentile']:.0%})" if row.get("price_percentile") is not None else ""),
        f"active: {', '.join(row.get('active_weekdays') or [])} · hours {', '.join(map(str, row.get('active_hours') or []))} (UTC)",
    ]
    predictions = [f"{task} {row[f'{task}_probability']:.0%}" for task in ("intent", "propensity", "churn")
                   if row.get(f"{task}_probability") is not None]
    if predictions:
        lines.append("predicted: " + ", ".join(predictions))
    if row.get("segment_name"):
        lines.append(f"segment: {row['segment_name']}")
    if row.get("anomaly_score") is not None:
        flagged = f" [red]flagged[/]: {'; '.join(row['anomaly_reasons'])}" if row.get("anomaly_flagged") else ""
        lines.append(f"anomaly score: {row['anomaly_score']:.2f}{flagged}")
    if row.get("next_items"):
        lines.append(f"next items: {', '.join(row['next_items'])}")
    lines.append(f"[dim]{row['lifecycle_rule']}[/]")
    return Panel("\n".join(lines), title=f"user {row['user_id']}", title_align="left", expand=False)


@reports_errors
def segments(
    bundle: BundleOpt,
    k: Annotated[Optional[int], typer.Option("--k", min=2,
                                             help="Number of segments (default: chosen by silhouette among stable k).")] = None,
) -> None:
    """Fits segments over the users' vectors and RFM, writes them into the bundle and describes them."""
    from shopformer.predict.insight import INSIGHT_DIR, BundleInsight

    insight = BundleInsight.open(bundle)
    fitted = insight.fit_segments(k)
    vectors = insight.model.history_vectors(insight.model.user_histories(insight.population["user_id"].to_list()))
    table = fitted.describe(insight.population, vectors)
    show_table(table.drop("description"), f"{fitted.k} segments (agreement across seeds, ARI: "
               f"{', '.join(f'{a:.2f}' for a in fitted.stability)})")
    for row in table.iter_rows(named=True):
        console.print(f"[bold]{row['name']}[/]: {row['description']}", highlight=False)
    console.print(f"[green]Segments written to {bundle / INSIGHT_DIR}[/]; profiles and the service now name each user's segment.")
