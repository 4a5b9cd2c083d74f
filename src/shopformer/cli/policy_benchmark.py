"""`shopformer benchmark policy`: off-policy estimators on the Open Bandit Dataset, obp's protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from shopformer.benchmark.policy import CAMPAIGNS, compare_policies, run_obd_protocol
from shopformer.cli.common import console, reports_errors
from shopformer.evaluate.ope import ESTIMATORS

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark policy --obd ../shared/datasets/open-bandit-sample --json policy_obd.json\n
  shopformer benchmark policy --obd ../shared/datasets/open-bandit-sample --campaign men --runs 10 --json men.json
"""


@reports_errors
def policy_benchmark(
    obd: Annotated[Path, typer.Option("--obd", help="Open Bandit Dataset folder (with random/ and bts/).")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    campaign: Annotated[Optional[str], typer.Option("--campaign", help="all, men or women (default: each of them).")] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Bootstrap resamples of the random log.")] = 30,
    policies: Annotated[bool, typer.Option("--policies/--no-policies", help="Also value bandit policies learned on the log.")] = True,
) -> None:
    """Estimate the Bernoulli-TS policy's click rate from the uniform-random log with every estimator
    and compare with its on-policy value: mean relative error per estimator and campaign."""
    campaigns = CAMPAIGNS if campaign is None else (campaign,)
    table = Table(title=f"Relative estimation error, {runs} bootstrap runs (mean ± std)", title_justify="left")
    table.add_column("campaign")
    for name in (*ESTIMATORS, "selected"):
        table.add_column(name, justify="right")

    def add(name: str, result: dict) -> None:
        errors = result["relative_error"]
        table.add_row(name, *(f"{errors[e]['mean']:.3f} ± {errors[e]['std']:.3f}" for e in (*ESTIMATORS, "selected")))
        console.print(f"{name}: selected {result['selected']}")

    document = run_obd_protocol(obd, campaigns=campaigns, runs=runs, on_campaign=add)
    console.print(table)
    if policies:
        document["policies"] = {c: compare_policies(obd, c) for c in campaigns}
        console.print(_policy_table(document["policies"]))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")


def _policy_table(results: dict) -> Table:
    table = Table(title="Policies learned on the first 70% of the random log, valued on the rest (DR, 95% interval)",
                  title_justify="left")
    table.add_column("policy")
    for campaign in results:
        table.add_column(campaign, justify="right")
    for name in next(iter(results.values()))["policies"]:
        cells = []
        for result in results.values():
            dr = result["policies"][name]["dr"]
            cells.append(f"{dr['value'] * 1000:.2f} [{dr['low'] * 1000:.2f}, {dr['high'] * 1000:.2f}] per 1k")
        table.add_row(name, *cells)
    return table
