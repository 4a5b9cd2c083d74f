"""Each user's recent events as the model reads them, kept in memory and updated event by event.

A known user starts from the bundle's stored history (`Shopformer.histories_`); events ingested by
the service are inserted into that sequence in time order and the oldest fall off past `max_len`,
so a recommendation never has to re-read the log. At start-up (and after a reload) the states are
rebuilt from the event store. A forgotten user's bundle history is suppressed for good.

Item and event-type codes are those of one bundle: a new bundle gets new states. Only the event
loop thread reads or changes a `UserStates`, so a request sees either all or none of an update.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.erasure import user_hash
from shopformer.data.sequences import SequenceArrays
from shopformer.predict.estimator import Shopformer

__all__ = ["History", "UserStates"]

#: Time given to bundle events of order-only logs: before anything ingested.
_BEFORE_EVERYTHING = -(2**62)


@dataclass
class History:
    """One user's recent events (item codes, event-type codes, unix seconds), oldest first."""

    items: list[int] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    def insert(self, item: int, event_type: int, timestamp: int, max_len: int) -> None:
        # After events of the same second: arrival order breaks ties, as in file ingestion.
        at = bisect.bisect_right(self.times, timestamp)
        self.items.insert(at, item)
        self.types.insert(at, event_type)
        self.times.insert(at, timestamp)
        if len(self.items) > max_len:
            del self.items[0], self.types[0], self.times[0]


class UserStates:
    """Recent-event sequences of every user the bundle or the event store knows."""

    def __init__(self, model: Shopformer, item_codes: dict[str, int], forgotten: set[str]) -> None:
        self.max_len = model.max_len
        self._bundle = model.stored_histories()
        self._bundle_row = {user: code for code, user in enumerate(model.known_users(), FIRST_CODE)}
        self._item_codes = item_codes
        self._type_codes = {name: code for code, name in enumerate(model.event_vocabulary, FIRST_CODE)}
        self._default_type = model.default_event_type
        self.uses_times = self._bundle.timestamps is not None
        self._forgotten = set(forgotten)
        self._ingested: dict[str, History] = {}

    def _bundle_events(self, user: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row = self._bundle_row.get(user)
        if row is None or self.is_forgotten(user):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        start, end = self._bundle.offsets[row], self._bundle.offsets[row + 1]
        items = self._bundle.items[start:end].astype(np.int64)
        types = self._bundle.event_types[start:end].astype(np.int64) if self._bundle.event_types is not None \
            else np.full_like(items, UNKNOWN_CODE)
        times = self._bundle.timestamps[start:end].astype(np.int64) if self.uses_times \
            else np.full_like(items, _BEFORE_EVERYTHING)
        return items, types, times

    def history(self, user: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the user's (item codes, event-type codes, times); empty for a user nobody knows."""
        state = self._ingested.get(user)
        if state is None:
            return self._bundle_events(user)
        return (np.array(state.items, dtype=np.int64), np.array(state.types, dtype=np.int64),
                np.array(state.times, dtype=np.int64))

    def session(self, item_ids: Sequence[str], event_types: Sequence[str | None],
                timestamps: Sequence[int | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An anonymous session as a history: unknown items get the unknown code, a missing type the
        most common one, missing times one second apart ending now (one continuous session)."""
        items = np.array([self._item_codes.get(str(i), UNKNOWN_CODE) for i in item_ids], dtype=np.int64)
        types = np.array([self._default_type if t is None else self._type_codes.get(t, UNKNOWN_CODE) for t in event_types],
                         dtype=np.int64)
        now = int(time.time())
        times = np.array([now - len(items) + i if t is None else t for i, t in enumerate(timestamps)], dtype=np.int64)
        return items, types, times

    def knows(self, user: str) -> bool:
        return user in self._ingested or len(self._bundle_events(user)[0]) > 0

    def apply(self, events: pl.DataFrame) -> int:
        """Adds stored events (user_id, item_id, event_type, timestamp) to the states; returns how many.

        An event without an item (a search) takes the unknown item's code, as in training sequences.
        """
        columns = (events[name].to_list() for name in ("user_id", "item_id", "event_type", "timestamp"))
        for user, item, event_type, timestamp in zip(*columns):
            state = self._ingested.get(user)
            if state is None:
                state = self._ingested[user] = History(*(list(a) for a in self._bundle_events(user)))
            state.insert(self._item_codes.get(item, UNKNOWN_CODE), self._type_codes.get(event_type, UNKNOWN_CODE),
                         int(timestamp), self.max_len)
        return events.height

    def is_forgotten(self, user: str) -> bool:
        return user_hash(user) in self._forgotten

    def forget(self, user: str) -> None:
        self._ingested.pop(user, None)
        self._forgotten.add(user_hash(user))

    def sequences(self, histories: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> SequenceArrays:
        """CSR arrays of several histories (as returned by `history`), for `score_histories`."""
        lengths = np.array([len(items) for items, _, _ in histories], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

        def flat(part: int) -> np.ndarray:
            arrays = [history[part] for history in histories]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)

        return SequenceArrays(offsets, flat(0), flat(1), flat(2) if self.uses_times else None)

    @property
    def n_ingested_users(self) -> int:
        return len(self._ingested)
