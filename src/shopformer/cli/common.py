"""What every command shares: the console, user-facing error handling and column-mapping options."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

from shopformer.data.mapping import CatalogMapping, IngestConfig
from shopformer.errors import ConfigError, ShopformerError

console = Console()
err_console = Console(stderr=True)

#: Exit code for bad input or configuration (usage errors from the parser also exit 2).
EXIT_BAD_INPUT = 2


TombstonesOpt = Annotated[
    Optional[Path],
    typer.Option("--tombstones", help="Tombstone file of forgotten users (shopformer privacy forget): their events are left out."),
]


def without_forgotten(dataset, tombstones: Path | None, keys=None):
    """`dataset` (raw user ids) without the users a tombstone file names, said on the console when any
    were dropped; with `keys`, tombstones name users by their rotation-proof `keys.stable` pseudonym."""
    if tombstones is None:
        return dataset
    from shopformer.data.erasure import Tombstones

    kept, dropped = Tombstones(tombstones).drop_from(dataset, keys.stable if keys is not None else str)
    if dropped:
        console.print(f"{dropped:,} events of forgotten users left out ({tombstones})")
    return kept


def pseudonymiser(key_file: Path | None):
    """The `Pseudonymiser` of `--pseudonymise-key`, or None without one."""
    if key_file is None:
        return None
    from shopformer.data.pseudonym import Pseudonymiser

    return Pseudonymiser.from_file(key_file)


def reports_errors(command: Callable) -> Callable:
    """Turn Shopformer's own errors into one red line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ShopformerError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML file with `events:` and `catalog:` column mappings.")]
PseudonymiseOpt = Annotated[
    Optional[Path],
    typer.Option("--pseudonymise-key", help="Key file (kept outside the data): user ids become keyed HMAC-SHA256 pseudonyms."),
]
CatalogOpt = Annotated[
    Optional[Path], typer.Option("--catalog", help="Catalog file (item_id, title, description, category, brand, price).")
]
UserColOpt = Annotated[Optional[str], typer.Option("--user-col", help="Column holding the user id.")]
ItemColOpt = Annotated[Optional[str], typer.Option("--item-col", help="Column holding the item id.")]
TimeColOpt = Annotated[Optional[str], typer.Option("--time-col", help="Column holding the event time.")]
EventColOpt = Annotated[Optional[str], typer.Option("--event-col", help="Column holding the event type ('none': every row is a view).")]
SessionColOpt = Annotated[Optional[str], typer.Option("--session-col", help="Column holding a session id.")]
EventIdColOpt = Annotated[
    Optional[str], typer.Option("--event-id-col", help="Column holding a unique event id (duplicates are quarantined).")
]
TimeFormatOpt = Annotated[
    Optional[str], typer.Option("--time-format", help="auto, unix_s, unix_ms, iso8601, yyyymmdd or a strftime pattern.")
]
EventMapOpt = Annotated[
    Optional[list[str]],
    typer.Option("--event-map", help="raw=canonical event-type mapping, repeatable (e.g. --event-map pv=view)."),
]
DelimiterOpt = Annotated[Optional[str], typer.Option("--delimiter", help="Field delimiter of CSV-like files (detected when omitted).")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of the files (default utf-8).")]


def parse_pairs(pairs: list[str] | None, flag: str, shape: str) -> dict[str, str]:
    """`key=value` flag values as a dict; a value without both sides is a usage error."""
    parsed = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} expects {shape}, got {pair!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def stated_mapping(config: Path | None, **flags) -> tuple[dict, CatalogMapping]:
    """Event-mapping fields the user stated (config file, then flags on top) and the catalog mapping.

    Fields left unstated are guessed from the file's column names later.
    """
    base = IngestConfig.from_yaml(config) if config else IngestConfig()
    stated = base.events.model_dump(exclude_unset=True)
    for field, value in flags.items():
        if value is None or field in ("event_map", "event_col"):
            continue
        stated[field] = value
    if flags.get("event_col") is not None:
        stated["event_col"] = None if flags["event_col"].lower() == "none" else flags["event_col"]
    event_map = {raw: canonical.lower() for raw, canonical in parse_pairs(flags.get("event_map"), "--event-map", "raw=canonical").items()}
    if event_map:
        stated["event_types"] = {**stated.get("event_types", {}), **event_map}
    catalog = base.catalog
    if flags.get("encoding") is not None:
        catalog = CatalogMapping(**{**catalog.model_dump(), "encoding": flags["encoding"]})
    return stated, catalog


def fresh_file(path: Path) -> Path:
    """`path` with its folder created and any previous file removed (for append-only logs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path
