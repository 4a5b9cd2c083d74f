"""`shopformer score`: the top-k items of every user (or of a list of users), written to Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from shopformer.cli.common import console, reports_errors
from shopformer.errors import ConfigError

SCORE_EXAMPLES = """[bold]Examples[/]\n
  shopformer score --bundle shopformer-output/quickstart/bundle --users all --out recs.parquet\n
  shopformer score --bundle bundle/ --users users.txt -k 20 --out recs.parquet --json score.json   (one id per line)
"""


def _read_users(users: str) -> list[str] | None:
    if users == "all":
        return None
    path = Path(users)
    if not path.is_file():
        raise ConfigError(f"--users {users}: give `all` or a file of user ids, one per line (no such file)")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise ConfigError(f"--users {users}: the file has no user ids")
    return ids


@reports_errors
def score(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train`.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file of user_id, item_id, score, rank.")],
    users: Annotated[str, typer.Option("--users", help="`all` (every user the bundle knows) or a file of ids.")] = "all",
    k: Annotated[int, typer.Option("-k", min=1, help="Items per user.")] = 10,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="Allow items already in the history.")] = False,
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="Users scored per call (bounds memory).")] = 4096,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Where to write the counts, rows/s and checksum.")] = None,
) -> None:
    """Batch scoring: recommendations for many users at once, streamed to Parquet with a checksum."""
    from shopformer.predict.estimator import Shopformer
    from shopformer.scale.batch import score_users

    if out.suffix != ".parquet":
        raise ConfigError(f"--out {out}: batch scores are written as Parquet (a .parquet file)")
    ids = _read_users(users)
    model = Shopformer.load(bundle)
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress("users", *columns, console=console, transient=True) as progress:
        task = progress.add_task("users", total=None)
        summary = score_users(model, out, ids, k=k, filter_seen=not keep_seen, chunk=chunk,
                              progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"{summary['rows']:,} recommendations for {summary['users']:,} users in {summary['seconds']:.1f} s "
                  f"({summary['rows_per_s']:,.0f} rows/s) -> {out}\nchecksum {summary['checksum']}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
