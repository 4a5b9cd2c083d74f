"""`shopformer privacy`: keys for pseudonymised user ids, their rotation, and re-keying what was saved."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from shopformer.cli.common import PseudonymiseOpt, console, pseudonymiser, reports_errors
from shopformer.errors import ConfigError

privacy_app = typer.Typer(help="Pseudonymisation keys (create, rotate, re-key saved data) and erasure everywhere.",
                          no_args_is_help=True)

KeyFileOpt = Annotated[Path, typer.Option("--key-file", help="The pseudonymisation key file (one hex key per line, oldest first).")]

PRIVACY_EXAMPLES = """[bold]Examples[/]\n
  shopformer privacy new-key --out /etc/shopformer/users.key\n
  shopformer data prepare events.csv --pseudonymise-key /etc/shopformer/users.key --out prepared/\n
  shopformer privacy rotate-key --key-file /etc/shopformer/users.key\n
  shopformer privacy rekey --key-file /etc/shopformer/users.key --bundle bundle/ --prepared prepared/ --store events.sqlite\n
  shopformer privacy forget --user u17 --tombstones forgotten.txt --bundle bundle/ --prepared prepared/ --store events.sqlite
"""


def _write_key_line(path: Path, mode: str) -> None:
    from shopformer.data.pseudonym import new_key

    with path.open(mode, encoding="utf-8") as out:
        out.write(new_key() + "\n")
    os.chmod(path, 0o600)  # a key is a secret: readable by its owner only


@privacy_app.command("new-key", epilog=PRIVACY_EXAMPLES)
@reports_errors
def new_key_command(out: Annotated[Path, typer.Option("--out", help="Key file to create (never overwritten).")]) -> None:
    """Create a key file for `--pseudonymise-key`. Keep it outside the data it protects."""
    if out.exists():
        raise ConfigError(f"--out {out}: the file exists; a key is never overwritten (rotate it with `privacy rotate-key`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_key_line(out, "x")
    console.print(f"[green]Key written to {out}[/] (mode 600).")


@privacy_app.command("rotate-key", epilog=PRIVACY_EXAMPLES)
@reports_errors
def rotate_key(key_file: KeyFileOpt) -> None:
    """Append a new key to the chain; then re-key what was saved with `privacy rekey`."""
    from shopformer.data.pseudonym import Pseudonymiser

    before = len(Pseudonymiser.from_file(key_file).keys)
    _write_key_line(key_file, "a")
    console.print(f"[green]{key_file} now holds {before + 1} keys.[/] Re-key the prepared data, bundles and stores "
                  "made with the previous chain: shopformer privacy rekey --key-file ...")


@privacy_app.command("rekey", epilog=PRIVACY_EXAMPLES)
@reports_errors
def rekey(
    key_file: KeyFileOpt,
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="Bundle folder to re-key.")] = None,
    prepared: Annotated[Optional[Path], typer.Option("--prepared", help="Prepared dataset folder to re-key.")] = None,
    store: Annotated[Optional[str], typer.Option("--store", help="Event store (SQLite file or postgresql:// URL) to re-key.")] = None,
) -> None:
    """Move saved pseudonyms from the chain before the last rotation to the current chain, without raw ids."""
    from shopformer.data.pseudonym import Pseudonymiser, rekey_prepared

    if bundle is None and prepared is None and store is None:
        raise ConfigError("name what to re-key: --bundle, --prepared and/or --store")
    keys = Pseudonymiser.from_file(key_file)
    keys.previous()  # a one-key file has nothing to re-key from: say so before touching anything
    bundle_users: list[str] = []
    if bundle is not None:
        from shopformer.predict.bundle import rekey_bundle

        bundle_users = rekey_bundle(bundle, keys)
        console.print(f"bundle {bundle}: {len(bundle_users):,} users re-keyed")
    if prepared is not None:
        console.print(f"prepared dataset {prepared}: {rekey_prepared(prepared, keys):,} users re-keyed")
    if store is not None:
        from shopformer.serve.store import open_store

        event_store = open_store(store)
        try:
            console.print(f"event store {store}: {event_store.rekey(keys.rekey, bundle_users):,} users re-keyed")
        finally:
            event_store.close()


@privacy_app.command("forget", epilog=PRIVACY_EXAMPLES)
@reports_errors
def forget(
    users: Annotated[list[str], typer.Option("--user", help="User id to erase (raw with --pseudonymise-key), repeatable.")],
    tombstones: Annotated[Path, typer.Option("--tombstones", help="Tombstone file later preparation and training read.")],
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="Bundle folder to erase the users from.")] = None,
    prepared: Annotated[Optional[Path], typer.Option("--prepared", help="Prepared dataset folder to erase the users from.")] = None,
    store: Annotated[Optional[str], typer.Option("--store", help="Event store (SQLite file or postgresql:// URL).")] = None,
    pseudonymise_key: PseudonymiseOpt = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the erasure report as JSON.")] = None,
) -> None:
    """Erase users everywhere: the store, a bundle's history and task log, a prepared dataset, and every
    later run (a tombstone that `--tombstones` on prepare, train and train-tasks applies)."""
    from shopformer.data.erasure import Tombstones

    keys = pseudonymiser(pseudonymise_key)
    graves = Tombstones(tombstones)
    event_store = None
    if store is not None:
        from shopformer.serve.store import open_store

        event_store = open_store(store)
    try:
        erased = [_forget_one(user, keys, graves, event_store, bundle, prepared) for user in users]
    finally:
        if event_store is not None:
            event_store.close()
    document = {"users": erased, "time": datetime.now(UTC).isoformat(timespec="seconds")}
    console.print_json(json.dumps(document))
    if report is not None:
        report.write_text(json.dumps(document, indent=1), encoding="utf-8")


def _forget_one(user: str, keys, graves, event_store, bundle: Path | None, prepared: Path | None) -> dict:
    """Erases one user (a raw id when `keys` pseudonymise) and says where from."""
    from shopformer.data.erasure import forget_in_prepared

    stored = user if keys is None else keys.pseudonym(user)
    places: dict[str, int | str] = {}
    if event_store is not None:
        places["event store events"] = event_store.forget(stored)
    if bundle is not None:
        from shopformer.predict.bundle import forget_in_bundle

        places.update(forget_in_bundle(bundle, stored))
    if prepared is not None:
        places["prepared dataset events"] = forget_in_prepared(prepared, stored)
    graves.add(user if keys is None else keys.stable(user))  # the id later runs check before pseudonymising
    places["tombstone"] = str(graves.path)
    return {"user_id": user, "erased_from": places}
