"""Events posted to the service, validated exactly as rows of an event file are.

The JSON events become an all-string table with one row per event and go through
`shopformer.data.validate.validate_events`: the same timestamp formats, event-type synonyms,
quarantine reasons and details as `shopformer data prepare`. Like a file column, the batch's
timestamps share one format (detected, or the request's `time_format`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import ValidationError

from shopformer.data.io import RawTable
from shopformer.data.mapping import EventMapping
from shopformer.data.validate import validate_events
from shopformer.errors import ConfigError

__all__ = ["OPTIONAL_EVENT_FIELDS", "ValidatedBatch", "validate_batch"]

_BASE_FIELDS = ("event_id", "user_id", "item_id", "timestamp", "event_type")
#: Optional event fields and the `EventMapping` option that names their column: the one list the
#: request schema, the validation and the store follow.
OPTIONAL_EVENT_FIELDS = {"session_id": "session_col", "quantity": "quantity_col", "value": "value_col",
             "query": "query_col", "rating": "rating_col", "text": "text_col"}


@dataclass(frozen=True)
class ValidatedBatch:
    """Accepted events (canonical columns, `index` = position in the request) and the rejected ones."""

    accepted: pl.DataFrame
    #: One dict per rejected event: index, event_id, reason, detail.
    rejected: list[dict[str, Any]]


def _cell(value: Any) -> str | None:
    # JSON numbers and strings alike become the text a file would hold; empty text is a missing value.
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def validate_batch(events: Sequence[dict[str, Any]], time_format: str = "auto") -> ValidatedBatch:
    """Validates posted events (dicts of the `EventIn` fields) as one table."""
    present = [name for name in OPTIONAL_EVENT_FIELDS if any(event.get(name) is not None for event in events)]
    columns = {name: [_cell(event.get(name)) for event in events] for name in (*_BASE_FIELDS, *present)}
    # Like a file without an event-type column: an event that does not say what it is is a view.
    columns["event_type"] = [value or "view" for value in columns["event_type"]]
    frame = pl.DataFrame({"__row__": list(range(len(events))), **columns},
                         schema={"__row__": pl.Int64, **{name: pl.String for name in columns}})
    raw = RawTable(frame, pl.DataFrame(schema={"__row__": pl.Int64, "__line__": pl.String}), "request")
    result = validate_events(raw, _mapping(present, time_format))
    index: dict[str, int] = {}
    for row, event_id in enumerate(columns["event_id"]):
        index.setdefault(event_id, row)  # a repeated id within the batch: the first one is the accepted one
    accepted = result.events.frame.with_columns(pl.col("event_id").replace_strict(index, return_dtype=pl.Int64).alias("index"))
    rejected = [{"index": row, "event_id": event_id, "reason": reason, "detail": detail}
                for row, event_id, reason, detail in result.quarantine.select("__row__", "event_id", "reason", "detail").iter_rows()]
    return ValidatedBatch(accepted, rejected)


def _mapping(present: list[str], time_format: str) -> EventMapping:
    try:
        return EventMapping(event_id_col="event_id", time_format=time_format,
                            **{OPTIONAL_EVENT_FIELDS[name]: name for name in present})
    except ValidationError as exc:
        raise ConfigError("; ".join(error["msg"] for error in exc.errors())) from None
