"""The report's charts: matplotlib figures embedded in the page as base64 PNG, so the page needs no network.

Figures are built on `matplotlib.figure.Figure` directly rather than through pyplot: no global
state and no GUI backend, so charts can be drawn from any thread (the service's too).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape

import numpy as np
import polars as pl
from matplotlib.figure import Figure

__all__ = ["bar_chart", "heatmap", "histograms", "reliability_chart", "scatter_map"]

_DPI = 100
#: One qualitative palette for every chart, so a segment has the same colour in each.
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")


def _embedded(fig: Figure, alt: str) -> str:
    """The figure as an `<img>` tag holding its PNG inline."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str) -> str:
    """Horizontal bars, first label on top."""
    fig = Figure(layout="constrained", figsize=(6.0, 0.45 * len(labels) + 1.0))
    ax = fig.subplots()
    positions = np.arange(len(labels))[::-1]
    ax.barh(positions, values, color=PALETTE[0])
    ax.set_yticks(positions, labels=list(labels))
    for y, value in zip(positions, values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    ax.set(title=title, xlabel=xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return _embedded(fig, title)


def heatmap(matrix: np.ndarray, rows: Sequence[str], columns: Sequence[str], *, title: str, xlabel: str, ylabel: str,
            fmt: str = "{:.0%}") -> str:
    """A matrix of shares or counts, each cell labelled; NaN cells (no data) stay blank."""
    fig = Figure(layout="constrained", figsize=(0.6 * len(columns) + 2.5, 0.4 * len(rows) + 1.5))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns))
    ax.set_yticks(range(len(rows)), labels=list(rows))
    top = np.nanmax(matrix) if np.isfinite(matrix).any() else 1.0
    for (i, j), value in np.ndenumerate(matrix):
        if np.isfinite(value):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 * top else "black")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _embedded(fig, title)


def histograms(series: dict[str, np.ndarray], *, title: str, xlabel: str, bins: int = 20) -> str:
    """One histogram of probabilities per name, side by side."""
    fig = Figure(layout="constrained", figsize=(3.2 * len(series), 2.8))
    axes = np.atleast_1d(fig.subplots(1, len(series), squeeze=False)[0])
    for k, (ax, (name, values)) in enumerate(zip(axes, series.items())):
        ax.hist(values, bins=bins, range=(0.0, 1.0), color=PALETTE[k % len(PALETTE)])
        ax.axvline(float(np.mean(values)), color="black", linestyle=":", linewidth=1)
        ax.set(title=f"{name} (n={len(values):,}, mean {np.mean(values):.2f})", xlabel=xlabel, xlim=(0, 1))
        ax.title.set_fontsize(9)
    axes[0].set_ylabel("count")
    fig.suptitle(title, fontsize=10)
    return _embedded(fig, title)


def reliability_chart(curves: dict[str, pl.DataFrame], *, title: str) -> str:
    """Observed rate against mean predicted probability per bin (`analytics.reliability_bins`), one line per task."""
    fig = Figure(layout="constrained", figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for k, (name, points) in enumerate(curves.items()):
        ax.plot(points["mean_predicted"], points["observed_rate"], marker="o", color=PALETTE[k % len(PALETTE)], label=name)
    ax.set(title=title, xlabel="predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return _embedded(fig, title)


def scatter_map(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, title: str) -> str:
    """Points coloured by group (a segment map); groups in the legend with their sizes.

    The axes span the 1st to 99th percentile: a few outlying users would squash everyone else into a
    corner. Users beyond are drawn on the edge, so that a small segment of outliers stays visible.
    """
    fig = Figure(layout="constrained", figsize=(6.5, 5.0))
    ax = fig.subplots()
    groups = np.asarray(groups, dtype=object)
    limits = []
    for values in (x, y):
        low, high = np.percentile(values, [1, 99]) if len(values) else (0.0, 1.0)
        margin = 0.05 * (high - low or 1.0)
        limits.append((low - margin, high + margin))
    x, y = np.clip(x, *limits[0]), np.clip(y, *limits[1])
    for k, name in enumerate(dict.fromkeys(groups.tolist())):
        members = groups == name
        ax.scatter(x[members], y[members], s=8, alpha=0.7, color=PALETTE[k % len(PALETTE)], label=f"{name} ({members.sum():,})")
    ax.set(title=title, xticks=[], yticks=[], xlim=limits[0], ylim=limits[1])
    ax.legend(loc="best", fontsize=7, markerscale=2)
    return _embedded(fig, title)
