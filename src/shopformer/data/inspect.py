"""Guessing which of a file's columns are the user, item, time and event type, for `data inspect`."""

from __future__ import annotations

import re

from pydantic import ValidationError

from shopformer.data.mapping import EventMapping
from shopformer.errors import ConfigError

#: For each event field, column-name patterns in order of preference (matched on lower-cased names).
_ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "user_col": (r"^user_?id$", r"^customer_?id$", r"^visitor_?id$", r"^client_?id$", r"^uid$", r"user", r"customer", r"visitor"),
    "item_col": (r"^item_?id$", r"^product_?id$", r"^sku$", r"^stock_?code$", r"^iid$", r"item", r"product", r"sku", r"stock"),
    "time_col": (r"^timestamp$", r"^event_?time$", r"^time$", r"^ts$", r"^date(time)?$", r"^event_?date$", r"time", r"date"),
    "event_col": (r"^event_?type$", r"^event$", r"^action$", r"^behaviou?r(_type)?$", r"^type$",
                  r"^(?!.*(date|time|id$)).*(event|action|behav)"),
    "session_col": (r"^session_?id$", r"session", r"^invoice_?no$"),
    "event_id_col": (r"^event_?id$",),
    "quantity_col": (r"^quantity$", r"^qty$"),
    "value_col": (r"^price$", r"^unit_?price$", r"^value$", r"^amount$"),
}


def _normalise(name: str) -> str:
    """Lower-case and put underscores at camelCase boundaries: 'CustomerID' -> 'customer_id'."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[\s\-]+", "_", snake).lower()


def guess_columns(columns: list[str], taken: set[str] | None = None) -> dict[str, str]:
    """Mapping field -> column for the fields whose column can be recognised by its name.

    Each column is used for at most one field (`taken` ones for none); fields are matched in the
    order of `_ROLE_PATTERNS`.
    """
    taken = set(taken or ())
    guesses: dict[str, str] = {}
    names = {col: _normalise(col) for col in columns if not col.startswith("__")}
    for field, patterns in _ROLE_PATTERNS.items():
        for pattern in patterns:
            match = next((c for c, n in names.items() if c not in taken and re.search(pattern, n)), None)
            if match is not None:
                guesses[field] = match
                taken.add(match)
                break
    return guesses


def resolve_event_mapping(columns: list[str], explicit: dict) -> EventMapping:
    """The mapping to use for a file: what the user stated, else what the column names suggest.

    Stated fields always win. A file with no recognisable user column but a session column treats
    each session as an anonymous user; one with no event-type column makes every row a view.
    """
    stated_columns = {value for key, value in explicit.items() if key.endswith("_col") and value}
    guessed = {k: v for k, v in guess_columns(columns, stated_columns).items() if k not in explicit}
    if "user_col" not in guessed and "session_col" in guessed:
        guessed["user_col"] = guessed["session_col"]
    fields = {**guessed, **explicit}
    if "event_col" not in fields:
        fields["event_col"] = None
    try:
        return EventMapping(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid event mapping: {problems}") from None
