"""The `shopformer` command line."""

from __future__ import annotations

import typer

from shopformer.cli.data import data_app
from shopformer.cli.quickstart import quickstart

app = typer.Typer(
    name="shopformer",
    help="Shopformer: predictions of what each shop user will do next, from the shop's event log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(data_app, name="data")
app.command("quickstart")(quickstart)


def main() -> None:
    """Console-script entry point."""
    app()
