"""The event-log contract every other stage relies on.

Events live in one Polars frame with canonical column names and types. Ids stay strings (the
shop's own ids, never renumbered here: `LabelEncoder` does that later and can invert it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from shopformer.errors import DataError

CANONICAL_EVENT_TYPES: tuple[str, ...] = (
    "view",
    "click",
    "favourite",
    "cart",
    "purchase",
    "search",
    "review",
)

#: Required event columns and their types.
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "item_id": pl.String(),
    "timestamp": pl.Int64(),
    "event_type": pl.String(),
}

#: Optional event columns and their types.
OPTIONAL_EVENT_COLUMNS: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "session_id": pl.String(),
    "quantity": pl.Float64(),
    "value": pl.Float64(),
    "query": pl.String(),
    "rating": pl.Float64(),
    "text": pl.String(),
    # Formats that ship a fixed split (e.g. session benchmarks' test cases) mark rows with it.
    "split": pl.String(),
}

#: Catalog columns that have a meaning to Shopformer; any other column is kept as an attribute.
CATALOG_COLUMNS: dict[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "price": pl.Float64(),
    "attributes": pl.List(pl.String()),
}

#: What a timestamp means: unix seconds, unix seconds of a day's midnight (UTC) for day-granular
#: logs, or only the order of events within a user (sequence files without times).
TimeResolution = Literal["second", "day", "order"]


def _check_columns(frame: pl.DataFrame, spec: dict[str, pl.DataType], what: str, required: bool) -> None:
    for name, dtype in spec.items():
        if name not in frame.columns:
            if required:
                raise DataError(f"{what} lacks the column '{name}'", column=name, expected=str(dtype))
            continue
        if frame.schema[name] != dtype:
            raise DataError(
                f"{what} column '{name}' has the wrong type",
                column=name,
                expected=str(dtype),
                found=str(frame.schema[name]),
            )


@dataclass(frozen=True)
class EventLog:
    """A validated event log: one row per event, canonical columns (`EVENT_COLUMNS` + optional)."""

    frame: pl.DataFrame
    time_resolution: TimeResolution = "second"

    def __post_init__(self) -> None:
        _check_columns(self.frame, EVENT_COLUMNS, "event log", required=True)
        _check_columns(self.frame, OPTIONAL_EVENT_COLUMNS, "event log", required=False)

    def __len__(self) -> int:
        return self.frame.height

    @property
    def n_users(self) -> int:
        return self.frame["user_id"].n_unique()

    @property
    def n_items(self) -> int:
        return self.frame["item_id"].n_unique()

    def event_counts(self) -> dict[str, int]:
        """Number of events per event type, most frequent first."""
        counts = self.frame["event_type"].value_counts(sort=True)
        return dict(zip(counts["event_type"].to_list(), counts["count"].to_list()))

    def with_frame(self, frame: pl.DataFrame) -> EventLog:
        """The same log description over another (e.g. filtered) frame."""
        return EventLog(frame, self.time_resolution)


@dataclass(frozen=True)
class Catalog:
    """Item metadata: `item_id` plus any of title, description, category, brand, price, attributes."""

    frame: pl.DataFrame

    def __post_init__(self) -> None:
        _check_columns(self.frame, {"item_id": pl.String()}, "catalog", required=True)
        _check_columns(self.frame, CATALOG_COLUMNS, "catalog", required=False)
        if self.frame["item_id"].is_duplicated().any():
            dup = self.frame.filter(pl.col("item_id").is_duplicated())["item_id"][0]
            raise DataError("catalog has the same item twice", column="item_id", expected="unique ids", found=dup)

    def __len__(self) -> int:
        return self.frame.height


@dataclass(frozen=True)
class Dataset:
    """Events plus what is known about items and users, as every reader returns it."""

    name: str
    events: EventLog
    catalog: Catalog | None = None
    #: Per-user features (one row per `user_id`), where the source has them.
    users: pl.DataFrame | None = None
    #: Free-form facts about the source (file paths, format, event-type mapping used).
    info: dict = field(default_factory=dict)
