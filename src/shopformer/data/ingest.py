"""From a shop's own files to a validated `Dataset`: the one entry point the CLI and the service share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shopformer.data.inspect import resolve_event_mapping
from shopformer.data.io import load_catalog, read_table
from shopformer.data.mapping import CatalogMapping, EventMapping, IngestConfig
from shopformer.data.schema import Dataset
from shopformer.data.validate import IngestResult, validate_events

PREVIEW_ROWS = 1000


@dataclass(frozen=True)
class Ingested:
    """A dataset read from files, the validation outcome and the exact mapping that produced it."""

    dataset: Dataset
    result: IngestResult
    config: IngestConfig
    #: The first rows of the raw file (all strings) and each raw column's count of empty values.
    preview: pl.DataFrame
    column_nulls: dict[str, int]


def ingest_files(
    events_path: str | Path,
    catalog_path: str | Path | None = None,
    *,
    stated: dict | None = None,
    catalog_mapping: CatalogMapping | None = None,
    name: str | None = None,
    now: int | None = None,
) -> Ingested:
    """Read and validate an event file (and optionally a catalog).

    `stated` holds the `EventMapping` fields the user gave; the others are guessed from the
    column names (see `resolve_event_mapping`). The resolved mapping is returned to be saved.
    """
    stated = stated or {}
    raw = read_table(
        events_path,
        delimiter=stated.get("delimiter"),
        encoding=stated.get("encoding", EventMapping.model_fields["encoding"].default),
    )
    mapping = resolve_event_mapping(raw.columns, stated)
    result = validate_events(raw, mapping, now=now)
    catalog_mapping = catalog_mapping or CatalogMapping()
    catalog = load_catalog(catalog_path, catalog_mapping) if catalog_path is not None else None
    info = {
        "format": "table",
        "events_path": str(events_path),
        "catalog_path": None if catalog_path is None else str(catalog_path),
        "event_type_mapping": result.event_type_mapping,
        "quarantine": result.counts(),
    }
    dataset = Dataset(name or Path(events_path).stem, result.events, catalog, info=info)
    columns = raw.frame.select(raw.columns)
    config = IngestConfig(events=mapping, catalog=catalog_mapping)
    return Ingested(dataset, result, config, columns.head(PREVIEW_ROWS), columns.null_count().row(0, named=True))
