"""Reader for OTTO (Kaggle 2022 "OTTO multi-objective recommender") session files, JSON Lines.

Format: one session per line, `{"session": 123, "events": [{"aid": 1, "ts": 1659304800000,
"type": "clicks"}, ...]}`; `ts` is unix milliseconds, `type` one of `clicks`, `carts`, `orders`.
The sessions are anonymous, so `user_id` is the session id; `aid` is the item. Times are cut to whole
seconds (the contract's unit; `time_resolution="second"`), events within the same second keep the
order of the file, and the types become `view`, `cart` and `purchase`.

A malformed line (not JSON, no integer session id, no events, an event without an integer `aid` or
`ts` or with an unknown type, a session seen on an earlier line) is quarantined as a whole with its
line number and reason: `Dataset.info["quarantine"]` counts lines per outcome and
`Dataset.info["quarantined_lines"]` lists them (`shopformer data prepare` writes them to
`ingest/quarantine.csv`); a warning names the first. A file with no good line is an error.
Lines are parsed one by one in Python, about half a million events a second: the full OTTO training
file (216M events) is meant to be read in slices.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from shopformer.data.formats._lines import event_log, path_info, read_lines
from shopformer.data.schema import Dataset
from shopformer.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["EVENT_TYPES", "read_otto"]

EVENT_TYPES: dict[str, str] = {"clicks": "view", "carts": "cart", "orders": "purchase"}
_LAYOUT = '{"session": int, "events": [{"aid": int, "ts": unix ms, "type": "clicks"|"carts"|"orders"}]}'


class _BadLine(ValueError):
    """Why a line is quarantined: a short `reason` code and a `detail` in words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def read_otto(path: str | Path, name: str | None = None) -> Dataset:
    """Read an OTTO JSON Lines session file; malformed lines are quarantined, not fatal."""
    lines = read_lines(path)
    if lines.height == 0:
        raise DataError("is empty", path=str(path), expected=f"one session per line: {_LAYOUT}")
    columns: dict[str, list] = {"session": [], "aid": [], "ts": [], "type": []}
    quarantined, seen = [], set()
    for line_no, line in lines.iter_rows():
        try:
            session, events = _parse(line, seen)
        except _BadLine as bad:
            quarantined.append({"line": line_no, "reason": bad.reason, "detail": bad.detail})
            continue
        seen.add(session)
        columns["session"] += [session] * len(events)
        for field in ("aid", "ts", "type"):
            columns[field] += [event[field] for event in events]
    accepted = lines.height - len(quarantined)
    if accepted == 0:
        first = quarantined[0]
        raise DataError(f"has no valid session line: {first['detail']}", path=str(path), row=first["line"],
                        expected=_LAYOUT)
    if quarantined:
        logger.warning("%s: %d of %d lines quarantined, the first at line %d: %s", path, len(quarantined),
                       lines.height, quarantined[0]["line"], quarantined[0]["detail"])
    schema = {"session": pl.Int64, "aid": pl.Int64, "ts": pl.Int64, "type": pl.String}
    events = _events(pl.DataFrame(columns, schema=schema))
    info = {
        "format": "otto", "paths": path_info(events=path),
        "event_types": {raw: ours for raw, ours in EVENT_TYPES.items()},
        "sessions": accepted, "quarantine": _counts(accepted, quarantined), "quarantined_lines": quarantined,
    }
    return Dataset(name or Path(path).stem, events, info=info)


def _parse(line: str, seen: set[int]) -> tuple[int, list[dict]]:
    """The session id and events of one line, or `_BadLine` saying what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise _BadLine("not_json", f"is not valid JSON: {err.msg} at character {err.pos + 1}") from None
    if not isinstance(record, dict):
        raise _BadLine("not_a_session", f"is a JSON {type(record).__name__}, not a session object")
    session = record.get("session")
    if not _is_id(session):
        raise _BadLine("bad_session", f"session is {session!r}, not a non-negative integer")
    if session in seen:
        raise _BadLine("duplicate_session", f"session {session} was already on an earlier line")
    events = record.get("events")
    if not isinstance(events, list) or not events:
        raise _BadLine("no_events", f"events is {_short(events)}, not a non-empty list")
    for position, event in enumerate(events, start=1):
        problem = _event_problem(event)
        if problem is not None:
            raise _BadLine("bad_event", f"event {position} {problem}")
    return session, events


def _event_problem(event) -> str | None:
    """What is wrong with one event object, or None."""
    if not isinstance(event, dict):
        return f"is {_short(event)}, not an object"
    for field in ("aid", "ts"):
        if not _is_id(event.get(field)):
            return f"has {field} {_short(event.get(field))}, not a non-negative integer"
    if event.get("type") not in EVENT_TYPES:
        return f"has type {_short(event.get('type'))}, not one of {', '.join(EVENT_TYPES)}"
    return None


def _is_id(value) -> bool:
    # JSON true/false are Python ints: not ids.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _events(rows: pl.DataFrame):
    """The canonical event log of the accepted lines' events."""
    session = pl.col("session").cast(pl.String)
    return event_log(rows.select(
        user_id=session, item_id=pl.col("aid").cast(pl.String), timestamp=pl.col("ts") // 1000,
        event_type=pl.col("type").replace_strict(EVENT_TYPES, return_dtype=pl.String), session_id=session,
    ), "second")


def _counts(accepted: int, quarantined: list[dict]) -> dict[str, int]:
    """Lines per outcome: "accepted", then each quarantine reason."""
    counts = {"accepted": accepted}
    for entry in quarantined:
        counts[entry["reason"]] = counts.get(entry["reason"], 0) + 1
    return counts
