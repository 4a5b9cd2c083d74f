"""A small synthetic one-row-per-session table whose label follows its columns, for the session-table tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

#: Codes that look numeric but name categories.
CODES = ("Browser",)


def session_frame(rows: int = 800, seed: int = 0) -> pl.DataFrame:
    """Page counts, a duration, a rate, a month, a visitor type, a browser code, a weekend flag and `Revenue`:
    buying is likelier with many product pages, a high page value, returning visitors and browser 2."""
    rng = np.random.default_rng(seed)
    pages = rng.poisson(12, rows)
    value = rng.exponential(5, rows) * (rng.random(rows) < 0.4)
    visitor = rng.choice(["Returning_Visitor", "New_Visitor", "Other"], rows, p=[0.8, 0.17, 0.03])
    browser = rng.choice([1, 2, 3], rows)
    score = 0.15 * pages + 0.6 * value + 1.2 * (visitor == "Returning_Visitor") + 1.2 * (browser == 2) - 6
    bought = rng.random(rows) < 1 / (1 + np.exp(-score))
    return pl.DataFrame({
        "ProductRelated": pages, "ProductRelated_Duration": np.round(pages * rng.gamma(2, 20, rows), 2),
        "BounceRates": np.round(rng.beta(1, 20, rows), 4), "PageValues": np.round(value, 3),
        "Month": rng.choice(["Feb", "Mar", "May", "Nov"], rows), "VisitorType": visitor, "Browser": browser,
        "Weekend": np.where(rng.random(rows) < 0.25, "TRUE", "FALSE"), "Revenue": np.where(bought, "TRUE", "FALSE"),
    })


def write_session_table(path: Path, rows: int = 800, seed: int = 0) -> Path:
    """The synthetic table as a `;`-separated CSV with CRLF line ends, like the UCI export."""
    text = session_frame(rows, seed).write_csv(separator=";", line_terminator="\r\n")
    path.write_bytes(text.encode())
    return path
