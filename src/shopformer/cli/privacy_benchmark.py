"""`shopformer benchmark privacy`: the DP table, the membership-inference attack, federated shops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from shopformer.benchmark.federated import split_shops
from shopformer.benchmark.privacy import run_dp_table, run_membership_attack
from shopformer.cli.benchmark import read_benchmark_dataset
from shopformer.cli.common import console, reports_errors
from shopformer.cli.model import ModelConfigOpt, SetOpt, resolved_configs
from shopformer.errors import ConfigError
from shopformer.train.config import PRIVATE_DEFAULTS, TrainConfig

EXAMPLES = """[bold]Examples[/]\n
  shopformer benchmark privacy --part dp --format recbole --events ../shared/datasets/amazon-scientific --json dp.json\n
  shopformer benchmark privacy --part membership --format recbole --events ../shared/datasets/amazon-scientific --json mia.json\n
  shopformer benchmark privacy --part federated-split --shops 5 --format recbole \\
    --events ../shared/datasets/amazon-scientific --json fed.json
"""

PARTS = ("dp", "membership", "federated-split")
DEFAULT_USERS = TrainConfig.model_fields["dp_users_per_step"].default


@reports_errors
def privacy_benchmark(
    events: Annotated[Path, typer.Option("--events", help="s3rec: the sequence file; recbole: the folder or file prefix.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results JSON.")],
    part: Annotated[str, typer.Option("--part", help=f"One of {', '.join(PARTS)}.")] = "dp",
    fmt: Annotated[str, typer.Option("--format", help="s3rec or recbole.")] = "s3rec",
    item_attributes: Annotated[Optional[Path], typer.Option("--item-attributes", help="s3rec item2attributes.json.")] = None,
    item_titles: Annotated[Optional[Path], typer.Option("--item-titles", help="s3rec item_title_prefix.txt.")] = None,
    epsilons: Annotated[str, typer.Option("--epsilons", help="Comma-separated epsilons of the DP table.")] = "8,3,1",
    shops: Annotated[int, typer.Option("--shops", min=2, help="federated-split: number of shops (unequal shares).")] = 5,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="federated-split: FedAvg rounds.")] = 20,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Budget of every non-private training run.")] = None,
    dp_epochs: Annotated[int, typer.Option("--dp-epochs", min=1, help="Epochs of every private run.")] = PRIVATE_DEFAULTS["epochs"],
    dp_users: Annotated[int, typer.Option("--dp-users-per-step", min=1, help="Expected users per private step.")] = DEFAULT_USERS,
    dp_lr: Annotated[float, typer.Option("--dp-lr", min=0.0, help="Learning rate of the private runs.")] = PRIVATE_DEFAULTS["lr"],
    model_config: ModelConfigOpt = None, overrides: SetOpt = None,
) -> None:
    """Private training against the non-private model, the attack that DP defends against, or
    shops training together with Flower; every run on the dataset's leave-one-out split."""
    if part not in PARTS:
        raise ConfigError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
    dataset = read_benchmark_dataset(fmt, events, item_attributes, item_titles, None)
    configs = resolved_configs(model_config, overrides, max_minutes)
    model, train = configs["model"], configs["train"]
    # Private runs take the train settings, then these (a budget in minutes would cut the planned steps short).
    dp = {"epochs": dp_epochs, "dp_users_per_step": dp_users, "lr": dp_lr, "max_minutes": None}
    if part == "dp":
        document = run_dp_table(dataset, epsilons=_epsilons(epsilons), model=model, train=train, dp=dp, on_row=_show)
    elif part == "membership":
        document = run_membership_attack(dataset, model=model, train=train, dp=dp, on_row=_show)
    else:
        document = split_shops(dataset, shares=_unequal_shares(shops), rounds=rounds, model=model, train=train)
        console.print_json(data=document["summary"])
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=1), encoding="utf-8")
    console.print(f"[green]Results written to {json_out}[/]")


def _epsilons(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--epsilons must be comma-separated numbers such as 8,3,1, got {text!r}") from None
    if not values or min(values) <= 0:
        raise ConfigError(f"--epsilons needs one or more positive numbers, got {text!r}")
    return values


def _unequal_shares(n: int) -> list[float]:
    """Shares falling by a constant ratio, so the largest shop is about four times the smallest."""
    ratio = 4 ** (1 / max(1, n - 1))
    return [ratio ** -k for k in range(n)]


def _show(row: dict) -> None:
    console.print_json(data={k: v for k, v in row.items() if k != "privacy"})
