"""`shopformer report`: one self-contained HTML page about a bundle's shop, users and models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopformer.cli.common import console, reports_errors
from shopformer.errors import ConfigError

REPORT_EXAMPLES = """[bold]Examples[/]\n
  shopformer report --bundle shopformer-output/quickstart/bundle --out report.html\n
  shopformer report --bundle bundle/ --out /tmp/shop-report.html   (then open it in any browser, offline)
"""


@reports_errors
def report(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train` (task models optional).")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write (one file: charts and styles inline).")] = Path("report.html"),
) -> None:
    """Write an offline HTML report: funnel, cohorts, RFM, segments, predictions, calibration, top items."""
    from shopformer.report.html import write_report

    if not bundle.is_dir():
        raise ConfigError(f"--bundle {bundle}: no such folder")
    with console.status(f"Building the report of {bundle}"):
        path = write_report(bundle, out)
    console.print(f"Report written to {path} ({path.stat().st_size / 1024:,.0f} KiB); open it in a browser.", highlight=False)
