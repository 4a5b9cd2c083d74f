"""What is in an event log at a glance: sizes, sessions, activity, funnel and catalog coverage.

`summarize(log, catalog)` needs a sessionized log (a `session_id` column). Every number is computed
with vectorised Polars expressions, so a log of a few million events takes a second or two.

Definitions:
- a session is a (user_id, session_id) pair; rows without a session id are left out of session
  figures;
- sparsity is 1 - distinct (user, item) pairs / (users x items), over rows that have an item;
- conversion rate is the share of sessions with a purchase; view→cart is the share of sessions with
  a view that also have a cart event, cart→purchase the share of sessions with a cart event that
  also have a purchase (None when the log has no event of those types);
- quantiles interpolate linearly between the two nearest values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from shopformer.data.schema import Catalog, EventLog
from shopformer.errors import DataError

DAY = 86_400


@dataclass(frozen=True)
class Distribution:
    """Mean, median, 90th percentile and maximum of a count per user or per session."""

    mean: float
    median: float
    p90: float
    max: int

    @classmethod
    def of(cls, values: pl.Series) -> Distribution:
        return cls(
            mean=float(values.mean()),
            median=float(values.median()),
            p90=float(values.quantile(0.9, "linear")),
            max=int(values.max()),
        )


@dataclass(frozen=True)
class DataSummary:
    """Headline figures of an event log; `to_dict`, `render` and `plot` present them."""

    n_users: int
    n_items: int
    n_events: int
    events_per_type: dict[str, int]
    n_sessions: int
    session_length: Distribution
    events_per_user: Distribution
    sparsity: float
    time_resolution: str
    first_timestamp: int
    last_timestamp: int
    conversion_rate: float | None
    view_to_cart: float | None
    cart_to_purchase: float | None
    catalog_items: int | None
    #: Share of catalog items with at least one event.
    catalog_coverage: float | None
    #: Share of items in the log that the catalog describes.
    items_in_catalog: float | None
    #: (session length, number of sessions), shortest first.
    session_length_counts: list[tuple[int, int]]
    #: (events of a user, number of users), fewest first.
    user_activity_counts: list[tuple[int, int]]
    #: (day as unix seconds of midnight UTC, events), in time order; empty for order-only logs.
    daily_events: list[tuple[int, int]]

    @property
    def time_span_days(self) -> float | None:
        if self.time_resolution == "order":
            return None
        return (self.last_timestamp - self.first_timestamp) / DAY

    def to_dict(self, include_series: bool = False) -> dict:
        """Plain JSON-able figures; `include_series` adds the per-length / per-day counts."""
        figures = asdict(self)
        series = {name: [list(pair) for pair in figures.pop(name)] for name in _SERIES}
        figures["time_span_days"] = self.time_span_days
        if self.time_resolution != "order":
            figures["first_time"] = _iso(self.first_timestamp)
            figures["last_time"] = _iso(self.last_timestamp)
        if include_series:
            figures["series"] = series
        return figures

    def render(self, console=None) -> None:
        """Print the summary as rich tables (to `console`, or a new one on stdout)."""
        console = console or Console()
        for table in (_overview_table(self), _types_table(self), _distribution_table(self)):
            console.print(table)

    def plot(self, path: str | Path) -> Path:
        """Save a PNG with four panels: event types, session lengths, user activity, daily events."""
        # The object-oriented API with an Agg canvas: no pyplot global state, no display needed.
        figure = Figure(figsize=(12, 8), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(2, 2)
        _plot_types(axes[0, 0], self)
        _plot_session_lengths(axes[0, 1], self)
        _plot_user_activity(axes[1, 0], self)
        _plot_daily(axes[1, 1], self)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        return path


_SERIES = ("session_length_counts", "user_activity_counts", "daily_events")


def summarize(log: EventLog, catalog: Catalog | None = None) -> DataSummary:
    """Compute the summary of a sessionized event log (and how well `catalog` covers it)."""
    frame = log.frame
    if "session_id" not in frame.columns:
        raise DataError("the summary needs sessions: sessionize the log first", column="session_id")
    if frame.height == 0:
        raise DataError("the event log is empty: there is nothing to summarise")
    sessions = _sessions(frame)
    per_user = frame.group_by("user_id").len()
    n_users, n_items, n_pairs = _sizes(frame)
    funnel = _funnel(sessions, set(frame["event_type"].unique().to_list()))
    coverage = _catalog_coverage(frame, catalog)
    return DataSummary(
        n_users=n_users,
        n_items=n_items,
        n_events=frame.height,
        events_per_type=log.event_counts(),
        n_sessions=sessions.height,
        session_length=Distribution.of(sessions["len"]),
        events_per_user=Distribution.of(per_user["len"]),
        sparsity=1.0 - n_pairs / (n_users * n_items) if n_users and n_items else 1.0,
        time_resolution=log.time_resolution,
        first_timestamp=int(frame["timestamp"].min()),
        last_timestamp=int(frame["timestamp"].max()),
        **funnel,
        **coverage,
        session_length_counts=_value_counts(sessions["len"]),
        user_activity_counts=_value_counts(per_user["len"]),
        daily_events=[] if log.time_resolution == "order" else _daily_events(frame["timestamp"]),
    )


def _sessions(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per session: its length and which funnel steps it reached."""
    if frame["session_id"].null_count() == frame.height:
        raise DataError("every row lacks a session id: sessionize the log first", column="session_id")
    kind = pl.col("event_type")
    return (
        frame.filter(pl.col("session_id").is_not_null())
        .group_by("user_id", "session_id")
        .agg(
            pl.len(),
            has_view=(kind == "view").any(),
            has_cart=(kind == "cart").any(),
            has_purchase=(kind == "purchase").any(),
        )
    )


def _sizes(frame: pl.DataFrame) -> tuple[int, int, int]:
    """Distinct users, distinct items and distinct (user, item) pairs (rows without an item aside)."""
    with_item = frame.filter(pl.col("item_id").is_not_null())
    pairs = with_item.select(pl.struct("user_id", "item_id").n_unique()).item() if with_item.height else 0
    return frame["user_id"].n_unique(), with_item["item_id"].n_unique(), int(pairs)


def _rate(sessions: pl.DataFrame, reached: str, among: str | None) -> float | None:
    base = sessions if among is None else sessions.filter(pl.col(among))
    return float(base[reached].mean()) if base.height else None


def _funnel(sessions: pl.DataFrame, types: set[str]) -> dict[str, float | None]:
    has = {name: name in types for name in ("view", "cart", "purchase")}
    return {
        "conversion_rate": _rate(sessions, "has_purchase", None) if has["purchase"] else None,
        "view_to_cart": _rate(sessions, "has_cart", "has_view") if has["view"] and has["cart"] else None,
        "cart_to_purchase": _rate(sessions, "has_purchase", "has_cart") if has["cart"] and has["purchase"] else None,
    }


def _catalog_coverage(frame: pl.DataFrame, catalog: Catalog | None) -> dict[str, float | int | None]:
    if catalog is None:
        return {"catalog_items": None, "catalog_coverage": None, "items_in_catalog": None}
    logged = frame["item_id"].drop_nulls().unique()
    described = catalog.frame["item_id"]
    shared = logged.is_in(described.implode()).sum()
    return {
        "catalog_items": catalog.frame.height,
        "catalog_coverage": shared / described.len() if described.len() else None,
        "items_in_catalog": shared / logged.len() if logged.len() else None,
    }


def _value_counts(values: pl.Series) -> list[tuple[int, int]]:
    counts = values.value_counts(name="n").sort(values.name)
    return [(int(v), int(n)) for v, n in counts.iter_rows()]


def _daily_events(timestamps: pl.Series) -> list[tuple[int, int]]:
    """Events per UTC day, days without events included as zeros."""
    counts = (timestamps // DAY * DAY).value_counts(name="n")
    first, last = counts[timestamps.name].min(), counts[timestamps.name].max()
    days = pl.DataFrame({timestamps.name: pl.int_range(first, last + DAY, DAY, eager=True)})
    filled = days.join(counts, on=timestamps.name, how="left", maintain_order="left").fill_null(0)
    return [(int(day), int(n)) for day, n in filled.iter_rows()]


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def _overview_table(summary: DataSummary) -> Table:
    table = Table(title="Event log", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    span = summary.time_span_days
    rows = [
        ("events", f"{summary.n_events:,}"),
        ("users", f"{summary.n_users:,}"),
        ("items", f"{summary.n_items:,}"),
        ("sessions", f"{summary.n_sessions:,}"),
        ("sparsity", f"{100 * summary.sparsity:.3f}%"),
        ("time span", "order only" if span is None
         else f"{span:.1f} days ({_iso(summary.first_timestamp)[:10]} to {_iso(summary.last_timestamp)[:10]})"),
        ("sessions with a purchase", _percent(summary.conversion_rate)),
        ("view -> cart (sessions)", _percent(summary.view_to_cart)),
        ("cart -> purchase (sessions)", _percent(summary.cart_to_purchase)),
    ]
    if summary.catalog_items is not None:
        rows += [
            ("catalog items", f"{summary.catalog_items:,}"),
            ("catalog items with events", _percent(summary.catalog_coverage)),
            ("logged items in the catalog", _percent(summary.items_in_catalog)),
        ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _types_table(summary: DataSummary) -> Table:
    table = Table(title="Events per type")
    for name in ("event type", "events", "share"):
        table.add_column(name, justify="left" if name == "event type" else "right")
    for kind, count in summary.events_per_type.items():
        table.add_row(kind, f"{count:,}", _percent(count / summary.n_events))
    return table


def _distribution_table(summary: DataSummary) -> Table:
    table = Table(title="Distributions")
    for name in ("", "mean", "median", "p90", "max"):
        table.add_column(name, justify="left" if not name else "right")
    for name, dist in (("events per session", summary.session_length), ("events per user", summary.events_per_user)):
        table.add_row(name, f"{dist.mean:.2f}", f"{dist.median:g}", f"{dist.p90:g}", f"{dist.max:,}")
    return table


def _plot_types(ax, summary: DataSummary) -> None:
    kinds, counts = list(summary.events_per_type), list(summary.events_per_type.values())
    ax.bar(kinds, counts, color="tab:blue")
    # Views usually outnumber purchases by 10-100x; a log axis keeps the rare types visible.
    if max(counts) > 50 * min(counts):
        ax.set_yscale("log")
    ax.set_title("Events per type")
    ax.set_ylabel("events")
    ax.tick_params(axis="x", rotation=30)


def _plot_session_lengths(ax, summary: DataSummary) -> None:
    lengths, counts = zip(*summary.session_length_counts)
    ax.bar(lengths, counts, width=1.0, color="tab:green")
    ax.set_yscale("log")
    ax.set_title(f"Session length (median {summary.session_length.median:g}, p90 {summary.session_length.p90:g})")
    ax.set_xlabel("events in the session")
    ax.set_ylabel("sessions")


def _plot_user_activity(ax, summary: DataSummary) -> None:
    events, users = zip(*summary.user_activity_counts)
    ax.loglog(events, users, "o", markersize=3, color="tab:purple")
    ax.set_title("Events per user")
    ax.set_xlabel("events of a user")
    ax.set_ylabel("users")


def _plot_daily(ax, summary: DataSummary) -> None:
    ax.set_title("Daily activity")
    if not summary.daily_events:
        ax.text(0.5, 0.5, "the log only orders events (no clock times)", ha="center", va="center")
        ax.set_axis_off()
        return
    days, counts = zip(*summary.daily_events)
    dates = [datetime.fromtimestamp(day, UTC) for day in days]
    ax.plot(dates, counts, marker=".", color="tab:orange")
    ax.set_ylabel("events per day")
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="x", rotation=30)
