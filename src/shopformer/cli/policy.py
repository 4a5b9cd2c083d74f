"""`shopformer policy evaluate`: what other policies would have earned on the service's decision log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from shopformer.cli.common import console, reports_errors

policy_app = typer.Typer(help="Next-best-action policies: evaluate them on logged decisions.", no_args_is_help=True)

EVALUATE_EXAMPLES = """[bold]Examples[/]\n
  shopformer policy evaluate shopformer-output/serve/decisions.sqlite --actions actions.yaml\n
  shopformer policy evaluate decisions.sqlite --actions actions.yaml --json ope.json
"""


@policy_app.command("evaluate", epilog=EVALUATE_EXAMPLES)
@reports_errors
def evaluate(
    log: Annotated[Path, typer.Argument(help="The decision log (SQLite) written by `shopformer serve --actions`.")],
    actions: Annotated[Path, typer.Option("--actions", help="The actions YAML the decisions were made under.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Where to write the results JSON.")] = None,
    train_share: Annotated[float, typer.Option("--train-share", min=0.1, max=0.9, help="Earlier share the bandits learn on.")] = 0.7,
) -> None:
    """Off-policy values (SLOPE's estimator, DR and IPS 95% intervals, effective sample size) and expected
    costs of always taking each action (where it was allowed) and of bandits learned on the earlier
    decisions, on the later ones."""
    from shopformer.policy.actions import load_actions
    from shopformer.policy.log import DecisionLog
    from shopformer.policy.offline import decision_rounds, value_policies

    config = load_actions(actions)
    decisions = DecisionLog(log, create=False).decisions(with_outcome=True)
    rounds, kept = decision_rounds(decisions, config.names, config.features)
    allowed = np.array([[name in (d.allowed or config.names) for name in config.names] for d in kept])
    fallback = config.names.index(config.fallback)
    fixed = {}
    for index, name in enumerate(config.names):
        # "Always X" takes X where it was allowed, and the fallback where it was not.
        always = np.zeros((rounds.n_rounds, rounds.n_actions, 1))
        always[:, fallback, 0] = ~allowed[:, index]
        always[:, index, 0] = allowed[:, index]
        fixed[f"always {name}"] = always
    costs = np.array([a.cost for a in config.actions])
    result = value_policies(rounds, fixed, train_share=train_share, allowed=allowed, costs=costs,
                            exploration=config.exploration)
    cut = result["train_rounds"]
    result["logging_policy_mean_reward"] = round(float(rounds.rewards[cut:].mean()), 6)
    console.print(_table(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1), encoding="utf-8")
        console.print(f"[green]Results written to {json_out}[/]")


def _table(result: dict) -> Table:
    table = Table(title=f"Value per decision on the last {result['test_rounds']:,} logged decisions "
                        f"(the logging policy earned {result['logging_policy_mean_reward']:.4f})", title_justify="left")
    for column in ("policy", "selected", "value", "cost", "DR [95% CI]", "IPS [95% CI]", "ESS"):
        table.add_column(column, justify="left" if column in ("policy", "selected") else "right")
    for name, row in result["policies"].items():
        dr, ips = row["dr"], row["ips"]
        table.add_row(name, row["selected"], f"{row['selected_value']:.4f}", f"{row['expected_cost']:.4f}",
                      f"{dr['value']:.4f} [{dr['low']:.4f}, {dr['high']:.4f}]",
                      f"{ips['value']:.4f} [{ips['low']:.4f}, {ips['high']:.4f}]", f"{row['effective_sample_size']:,.0f}")
    return table
