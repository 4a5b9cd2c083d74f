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


SIMULATE_EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark simulate --work sim/ --json policy_simulation.json --plot regret.png\n
  shopformer benchmark simulate --work sim/ --streams-only        (write sim/stream_<seed>.npz for peers)\n
  shopformer benchmark simulate --work sim/ --peer 'mabwiser-linucb=sim/mabwiser_{seed}.npz' --json out.json
"""


@reports_errors
def simulate_benchmark(
    work: Annotated[Path, typer.Option("--work", help="Folder of the demo shop and the streams.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Where to write the results JSON.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Where to draw the regret curves (PNG).")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Stream seeds, comma-separated.")] = "10,11,12",
    rounds: Annotated[int, typer.Option("--rounds", min=200, help="Decisions per stream.")] = 100_000,
    streams_only: Annotated[bool, typer.Option("--streams-only", help="Only write the streams, for peers to play.")] = False,
    peer: Annotated[Optional[list[str]], typer.Option("--peer", help="NAME=FILE with {seed}: a peer's actions per stream.")] = None,
    users: Annotated[int, typer.Option("--users", min=50, help="Customers of the demo shop, when the folder has none yet.")] = 2000,
) -> None:
    """Regret of every next-best-action policy against the oracle, rules and peers on the demo-shop simulator."""
    from shopformer.benchmark.simulation import plot_regret, run_retention, run_simulation, write_streams
    from shopformer.cli.common import parse_pairs
    from shopformer.data.synth import DemoShopConfig

    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    streams = [work / f"stream_{s}.npz" for s in seed_list]
    if streams_only or not all(p.exists() and _rounds_in(p) == rounds for p in streams):
        with console.status(f"Writing {len(seed_list)} streams of {rounds:,} decisions to {work}"):
            write_streams(work / "shop", work, seed_list, rounds=rounds, config=DemoShopConfig(n_users=users))
    if streams_only:
        console.print(f"[green]Streams written to {work}[/]")
        return
    peers = {name: [pattern.format(seed=s) for s in seed_list] for name, pattern in parse_pairs(peer, "--peer", "NAME=FILE").items()}
    result = run_simulation(streams, peers, on_policy=lambda name, seconds: console.print(f"{name}: {seconds:.1f} s"))
    console.print(_regret_table(result))
    with console.status("Fitted Q iteration against the myopic policy on the retention simulator"):
        result["retention"] = run_retention(work / "shop")
    console.print(_retention_table(result["retention"]))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1), encoding="utf-8")
        console.print(f"[green]Results written to {json_out}[/]")
    if plot is not None:
        console.print(f"[green]Regret curves drawn in {plot_regret(result, plot)}[/]")


def _rounds_in(stream: Path) -> int:
    import numpy as np

    with np.load(stream) as data:
        return len(data["rewards"])


def _regret_table(result: dict) -> Table:
    table = Table(title=f"Cumulative regret after {result['streams'][0]['rounds']:,} decisions (lower is better)",
                  title_justify="left")
    table.add_column("policy")
    for stream in result["streams"]:
        table.add_column(f"seed {stream['seed']}", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("default / this", justify="right")
    for name, summary in result["summary"].items():
        cells = [f"{s['policies'][name]['regret']:,.0f}" for s in result["streams"]]
        table.add_row(name, *cells, f"{summary['mean_regret']:,.0f}", f"{summary['default_over_this']:.3f}")
    return table


def _retention_table(result: dict) -> Table:
    table = Table(title=f"Retention over {result['horizon_weeks']} weeks, {result['test_users']} held-out users "
                        f"x {result['replicas']}: reward per user", title_justify="left")
    for column in ("policy", "reward per user", "minus myopic [95% CI]"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in result["policies"].items():
        low, high = row["minus_myopic_95ci"]
        table.add_row(name, f"{row['mean_reward_per_user']:.2f}", f"{row['minus_myopic']:+.2f} [{low:+.2f}, {high:+.2f}]")
    return table


SLATE_EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark slate --work slate/ --json policy_slate.json\n
  shopformer benchmark slate --work slate/ --rounds 5000 --users 400 --train-minutes 0.5 --json quick.json
"""


@reports_errors
def slate_benchmark(
    work: Annotated[Path, typer.Option("--work", help="Folder of the demo shop.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    rounds: Annotated[int, typer.Option("--rounds", min=100, help="Slates shown.")] = 20_000,
    users: Annotated[int, typer.Option("--users", min=50, help="Customers of the demo shop, when the folder has none yet.")] = 2000,
    train_minutes: Annotated[float, typer.Option("--train-minutes", min=0.05, help="Training budget of the model.")] = 3.0,
) -> None:
    """Clicks of slates chosen by the slate bandit over the behaviour model's candidates, against the
    model's own top items, random candidates and the oracle, on the demo shop with held-out new items."""
    from shopformer.benchmark.slate import run_slate_simulation
    from shopformer.data.synth import DemoShopConfig

    with console.status(f"Training on the demo shop, then {rounds:,} slates"):
        result = run_slate_simulation(work, rounds=rounds, train_minutes=train_minutes, config=DemoShopConfig(n_users=users))
    table = Table(title=f"{rounds:,} slates of {result['slots']} from the model's top {result['candidates']}; "
                        f"{result['new_items']} new items", title_justify="left")
    for column in ("policy", "clicks / slate", "share of oracle", "new items shown / slate", "clicks on new items"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in result["policies"].items():
        table.add_row(name, f"{row['clicks_per_slate']:.3f}", f"{row['share_of_oracle']:.3f}",
                      f"{row['new_items_shown_per_slate']:.2f}", f"{row['clicks_on_new_items_share']:.1%}")
    console.print(table)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")
