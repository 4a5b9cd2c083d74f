"""`shopformer benchmark uplift`: uplift learners on the Hillstrom e-mail experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shopformer.benchmark.uplift import run_hillstrom
from shopformer.cli.common import console, reports_errors

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark uplift --hillstrom ../shared/datasets/hillstrom/hillstrom.csv --json uplift_visit.json\n
  shopformer benchmark uplift --hillstrom ../shared/datasets/hillstrom/hillstrom.csv --treatment womens \\
    --outcome conversion --json uplift_conversion.json
"""


@reports_errors
def uplift_benchmark(
    hillstrom: Annotated[Path, typer.Option("--hillstrom", help="The Hillstrom experiment CSV.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    treatment: Annotated[str, typer.Option("--treatment", help="any, mens or womens (against no e-mail).")] = "any",
    outcome: Annotated[str, typer.Option("--outcome", help="visit, conversion or spend.")] = "visit",
    top: Annotated[float, typer.Option("--top", min=0.01, max=1.0, help="Share of customers to target for uplift@k.")] = 0.3,
    runs: Annotated[int, typer.Option("--runs", min=10, help="Bootstrap resamples for the intervals.")] = 200,
) -> None:
    """S/T/X/DR learners: Qini coefficient, Qini and uplift areas, uplift@k, with 95% intervals."""
    document = run_hillstrom(hillstrom, treatment=treatment, outcome=outcome, k=top, runs=runs)
    table = Table(title=f"Uplift on Hillstrom ({treatment} e-mail, {outcome}); best on validation: {document['best']}",
                  title_justify="left")
    for column in ("learner", "Qini coefficient [95% CI]", f"uplift@{top:.0%}", "extra per 10k"):
        table.add_column(column, justify="right")
    for name, row in document["learners"].items():
        q, u = row["qini_coefficient"], row[f"uplift@{top:.0%}"]
        table.add_row(name, f"{q['value']:.4f} [{q['low']:.4f}, {q['high']:.4f}]", f"{u['value']:.4f}", f"{row['extra_per_10k']:.0f}")
    console.print(table)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")
