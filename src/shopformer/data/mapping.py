"""How a user's files map onto the event-log contract: column names, time format, event types.

One typed, strict config (unknown keys are an error) that round-trips to YAML and is saved with
every prepared dataset, so the same mapping can be replayed.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import yaml
from pydantic import Field, field_validator, model_validator

from shopformer.config import FrozenConfig, read_yaml_file
from shopformer.data.schema import CANONICAL_EVENT_TYPES
from shopformer.errors import ConfigError

#: Named timestamp formats; any string containing '%' is read as a strftime pattern instead
#: (e.g. "%m/%d/%Y %H:%M"). "auto" decides one format per column from its values.
NAMED_TIME_FORMATS: tuple[str, ...] = ("auto", "unix_s", "unix_ms", "iso8601", "yyyymmdd")
TimeFormat = str

#: Common spellings of the canonical event types in shop logs (matched case-insensitively).
EVENT_SYNONYMS: dict[str, str] = {
    **{name: name for name in CANONICAL_EVENT_TYPES},
    "pv": "view", "page_view": "view", "pageview": "view", "impression": "view", "detail": "view",
    "clk": "click", "clicks": "click",
    "fav": "favourite", "favorite": "favourite", "collect": "favourite", "like": "favourite",
    "wishlist": "favourite", "add_to_wishlist": "favourite",
    "addtocart": "cart", "add_to_cart": "cart", "add-to-cart": "cart", "basket": "cart",
    "buy": "purchase", "order": "purchase", "transaction": "purchase", "checkout": "purchase",
    "sale": "purchase",
    "query": "search",
    "rate": "review", "rating": "review",
}


class _Mapping(FrozenConfig):
    """A strict mapping; the reading options shared by event and catalog files are checked here."""

    @field_validator("delimiter", check_fields=False)
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"the delimiter must be one character, got {value!r}")
        return value

    @field_validator("encoding", check_fields=False)
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None
        return value


class EventMapping(_Mapping):
    """Which of the user's columns hold each event field, and how to read times and event types."""

    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    #: None: the file has no event-type column and every row is `default_event`.
    event_col: str | None = "event_type"
    event_id_col: str | None = None
    session_col: str | None = None
    quantity_col: str | None = None
    value_col: str | None = None
    query_col: str | None = None
    rating_col: str | None = None
    text_col: str | None = None
    time_format: TimeFormat = "auto"
    default_event: str = "view"
    #: Raw event value -> event type; applied before `EVENT_SYNONYMS`.
    event_types: dict[str, str] = Field(default_factory=dict)
    #: Event types allowed beyond the canonical ones (user-defined vocabulary).
    extra_event_types: tuple[str, ...] = ()
    #: Rows later than the read time plus this many seconds are quarantined as "future timestamp".
    max_future_seconds: int = 86_400
    #: Rows before this unix time (1995-01-01) are quarantined as "implausible timestamp".
    min_timestamp: int = 788_918_400
    #: Field delimiter of CSV-like files; None detects it from the header line.
    delimiter: str | None = None
    #: Text encoding of CSV/JSON files (e.g. "latin-1" for old spreadsheet exports).
    encoding: str = "utf-8"

    @field_validator("time_format")
    @classmethod
    def _known_time_format(cls, value: str) -> str:
        if value not in NAMED_TIME_FORMATS and "%" not in value:
            raise ValueError(
                f"unknown time format {value!r}: use one of {', '.join(NAMED_TIME_FORMATS)} "
                "or a strftime pattern such as '%m/%d/%Y %H:%M'"
            )
        return value

    @model_validator(mode="after")
    def _default_event_is_allowed(self) -> EventMapping:
        if self.default_event not in self.allowed_event_types():
            raise ValueError(
                f"default_event {self.default_event!r} is not an event type; "
                f"use one of {', '.join(sorted(self.allowed_event_types()))} or add it to extra_event_types"
            )
        return self

    def optional_columns(self) -> dict[str, str]:
        """Canonical optional field -> user's column, for the columns that are mapped."""
        pairs = {
            "event_id": self.event_id_col, "session_id": self.session_col,
            "quantity": self.quantity_col, "value": self.value_col, "query": self.query_col,
            "rating": self.rating_col, "text": self.text_col,
        }
        return {field: col for field, col in pairs.items() if col is not None}

    def allowed_event_types(self) -> set[str]:
        return set(CANONICAL_EVENT_TYPES) | set(self.extra_event_types) | set(self.event_types.values())

    def canonical_event(self, raw: str) -> str | None:
        """The event type a raw value maps to, or None when it is unknown."""
        if raw in self.event_types:
            return self.event_types[raw]
        key = raw.strip().lower()
        if key in self.event_types:
            return self.event_types[key]
        if key in self.extra_event_types:
            return key
        return EVENT_SYNONYMS.get(key)


class CatalogMapping(_Mapping):
    """Which of the user's catalog columns hold each item field; other columns are kept as-is."""

    item_col: str = "item_id"
    title_col: str | None = "title"
    description_col: str | None = "description"
    category_col: str | None = "category"
    brand_col: str | None = "brand"
    price_col: str | None = "price"
    delimiter: str | None = None
    encoding: str = "utf-8"

    def field_columns(self) -> dict[str, str]:
        """Canonical catalog field -> user's column, for the fields that are mapped."""
        pairs = {
            "item_id": self.item_col, "title": self.title_col, "description": self.description_col,
            "category": self.category_col, "brand": self.brand_col, "price": self.price_col,
        }
        return {field: col for field, col in pairs.items() if col is not None}


def parse_event_map(pairs: list[str]) -> dict[str, str]:
    """`["pv=view", "buy=purchase"]` (the CLI's `--event-map raw=canonical`) as a dict."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        raw, sep, canonical = pair.partition("=")
        if not sep or not raw or not canonical.strip():
            raise ConfigError(f"--event-map expects raw=canonical (e.g. pv=view), got {pair!r}")
        mapping[raw] = canonical.strip()
    return mapping


class IngestConfig(_Mapping):
    """The whole reading config, as stored in a YAML file (`events:` and `catalog:` sections)."""

    events: EventMapping = Field(default_factory=EventMapping)
    catalog: CatalogMapping = Field(default_factory=CatalogMapping)

    @classmethod
    def from_yaml(cls, path: str | Path) -> IngestConfig:
        """Load a config file; unknown keys and wrong values are reported with their place."""
        return cls.from_dict(read_yaml_file(path) or {}, where=str(path))

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
