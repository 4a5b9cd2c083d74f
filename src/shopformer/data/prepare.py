"""Cleaning steps between a validated event log and model inputs.

Each step is a small object with its hyper-parameters in `__init__` and an `apply(log) -> EventLog`
method; after `apply` it records what it did in trailing-underscore attributes (`removed_`, …) so a
pipeline can report it. Everything is vectorised Polars/NumPy: no per-row Python.

Steps that look at "the previous event of the same user" need the log grouped by user and ordered
by time. They call `sort_by_user_time`, which is a cheap no-op on a log that is already in that order,
so a pipeline pays for the sort once and every later step reuses it (filters keep row order).

Each step also works on a bare frame whose `user_id`, `item_id` and `event_type` hold integer codes
(`filter_frame`, `session_numbers`, `sort_frame_by_user_time`): codes from sorted ids keep both the
equality and the order of the ids, so the streaming preparation, which only holds such narrow
columns, runs these same steps and gets the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.artifacts import read_header, write_header
from shopformer.data.codes import FIRST_CODE, PADDING_CODE, UNKNOWN_CODE
from shopformer.data.schema import EventLog
from shopformer.errors import DataError

__all__ = [
    "ConsecutiveDuplicatesFilter",
    "LabelEncoder",
    "MinCountFilter",
    "Sessionizer",
    "is_sorted_by_user_time",
    "sort_by_user_time",
    "sort_frame_by_user_time",
]


def _same_user_as_previous() -> pl.Expr:
    return pl.col("user_id") == pl.col("user_id").shift(1)


def is_sorted_by_user_time(log: EventLog | pl.DataFrame) -> bool:
    """Whether rows are grouped by `user_id` (ascending) and in time order within each user."""
    frame = log.frame if isinstance(log, EventLog) else log
    if frame.height < 2:
        return True
    previous_user = pl.col("user_id").shift(1)
    in_order = (pl.col("user_id") > previous_user) | (
        (pl.col("user_id") == previous_user) & (pl.col("timestamp") >= pl.col("timestamp").shift(1))
    )
    return bool(frame.select(in_order.slice(1).all()).item())


def _check_no_null_keys(frame: pl.DataFrame) -> None:
    for column in ("user_id", "timestamp"):
        nulls = frame[column].null_count()
        if nulls:
            raise DataError(f"event log has {nulls} missing values", column=column, expected="no nulls")


def sort_by_user_time(log: EventLog) -> EventLog:
    """The log ordered by user id, then timestamp; events at the same time keep their input order."""
    if is_sorted_by_user_time(log):
        return log
    return log.with_frame(sort_frame_by_user_time(log.frame))


def sort_frame_by_user_time(frame: pl.DataFrame) -> pl.DataFrame:
    """`sort_by_user_time` on a bare frame whose `user_id` holds string ids or integer codes.

    Sorting 10M string ids directly is slow (string comparisons at every step), so string users are
    first replaced by their rank among the distinct ids and the sort runs on two integer keys.
    """
    if is_sorted_by_user_time(frame):
        return frame
    _check_no_null_keys(frame)
    user_rank = frame["user_id"]
    if not user_rank.dtype.is_integer():
        distinct_users = user_rank.unique().sort()
        user_rank = user_rank.replace_strict(
            distinct_users, pl.int_range(len(distinct_users), dtype=pl.Int32, eager=True), return_dtype=pl.Int32
        )
    # np.lexsort is stable and sorts by the last key first: user, then time, then input position.
    order = np.lexsort((frame["timestamp"].to_numpy(), user_rank.to_numpy()))
    return frame[order]


class ConsecutiveDuplicatesFilter:
    """Drops an event identical, in `columns`, to the same user's previous event (e.g. page reloads).

    The output is sorted by user, then time. After `apply`, `removed_` is the number of rows dropped.
    """

    def __init__(self, columns: tuple[str, ...] = ("item_id", "event_type")) -> None:
        self.columns = tuple(columns)

    def apply(self, log: EventLog) -> EventLog:
        return log.with_frame(self.filter_frame(sort_by_user_time(log).frame))

    def filter_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The filter on a frame already sorted by user and time (ids as strings or as codes)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError("cannot compare consecutive events on an absent column", column=missing[0])
        repeats = _same_user_as_previous()
        for column in self.columns:
            # eq_missing: two missing values (e.g. no session) count as equal, not as unknown.
            repeats = repeats & pl.col(column).eq_missing(pl.col(column).shift(1))
        kept = frame.filter(~repeats.fill_null(False))
        self.removed_ = frame.height - kept.height
        return kept


class MinCountFilter:
    """Iterative k-core: keeps users with >= `min_user_events` and items with >= `min_item_events`.

    Dropping a rare item can push a user below the threshold and vice versa, so passes repeat until
    one removes nothing. The result is the largest sub-log meeting both thresholds. Row order is kept.
    After `apply`: `removed_` (rows dropped) and `iterations_` (passes that dropped rows; 0 when the
    log already met the thresholds).
    """

    def __init__(self, min_user_events: int = 5, min_item_events: int = 5) -> None:
        self.min_user_events = min_user_events
        self.min_item_events = min_item_events

    def apply(self, log: EventLog) -> EventLog:
        return log.with_frame(self.filter_frame(log.frame))

    def filter_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The filter on a bare frame (ids as strings or as codes; a missing item is its own group)."""
        rows_in = frame.height
        self.iterations_ = 0
        if self.min_user_events > 1 or self.min_item_events > 1:
            frame = self._filter_until_stable(frame)
        self.removed_ = rows_in - frame.height
        return frame

    def _filter_until_stable(self, frame: pl.DataFrame) -> pl.DataFrame:
        enough = (pl.len().over("user_id") >= self.min_user_events) & (
            pl.len().over("item_id") >= self.min_item_events
        )
        while True:
            kept = frame.filter(enough)
            if kept.height == frame.height:
                return frame
            self.iterations_ += 1
            frame = kept


class Sessionizer:
    """Adds (or overwrites) `session_id`: a user's session ends after `gap_seconds` of inactivity.

    A gap strictly longer than `gap_seconds` starts a new session. Session ids read
    `"<user_id>:<n>"` with n counting the user's sessions from 0. By time resolution:
    - "second": the inactivity rule above;
    - "day": timestamps are day midnights, so a session is one user-day;
    - "order": timestamps carry no time, so an existing `session_id` is kept as it is and a log
      without one gets one session per user.
    The output is sorted by user, then time. After `apply`, `n_sessions_` is the number of sessions.
    """

    def __init__(self, gap_seconds: int = 1800) -> None:
        self.gap_seconds = gap_seconds

    def apply(self, log: EventLog) -> EventLog:
        ordered = sort_by_user_time(log)
        frame = ordered.frame
        if log.time_resolution == "order" and "session_id" in frame.columns:
            self.n_sessions_ = frame["session_id"].n_unique()
            return ordered
        numbers = self.session_numbers(frame, log.time_resolution)
        frame = frame.with_columns(session_id=pl.format("{}:{}", pl.col("user_id"), pl.lit(numbers)))
        return ordered.with_frame(frame)

    def session_numbers(self, frame: pl.DataFrame, time_resolution: str) -> pl.Series:
        """Each event's session number within its user (0, 1, …), on a frame sorted by user and time
        (ids as strings or as codes); sets `n_sessions_`."""
        starts = self._session_starts(time_resolution)
        numbers = frame.select((starts.cast(pl.Int64).cum_sum().over("user_id") - 1).alias("session")).to_series()
        self.n_sessions_ = int(frame.select(starts.sum()).item()) if frame.height else 0
        return numbers

    def _session_starts(self, time_resolution: str) -> pl.Expr:
        new_user = ~_same_user_as_previous().fill_null(False)
        if time_resolution == "order":
            return new_user
        step = pl.col("timestamp") - pl.col("timestamp").shift(1)
        max_gap = 0 if time_resolution == "day" else self.gap_seconds
        return new_user | (step > max_gap).fill_null(True)


def _as_string_series(values: pl.Series | np.ndarray | Iterable[str]) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.cast(pl.String)
    if isinstance(values, np.ndarray):
        return pl.Series(values).cast(pl.String)
    return pl.Series(list(values), dtype=pl.String)


#: Up to this many ids, `LabelEncoder.transform` looks them up in a dict instead of a Polars join.
_DICT_LOOKUP_MAX = 256


class LabelEncoder:
    """Maps string ids to dense int32 codes laid out for an embedding table.

    Code 0 is padding, code 1 is "unknown id" (any value not seen by `fit`, and missing values),
    and known ids start at 2, in sorted order after `fit` or in the given order with `from_classes`.
    After fitting, `classes_` is a String `pl.Series`: `classes_[k]` has code `k + 2`.
    Saved as JSON (`save`/`load`), never pickled.
    """

    def fit(self, values: pl.Series | np.ndarray | Iterable[str]) -> LabelEncoder:
        """Learns the distinct non-missing values, in sorted order."""
        self.classes_ = _as_string_series(values).drop_nulls().unique().sort().rename("class")
        return self

    @classmethod
    def from_classes(cls, classes: Iterable[str]) -> LabelEncoder:
        """An encoder with a fixed vocabulary in the given order (e.g. the canonical event types)."""
        series = _as_string_series(list(classes)).rename("class")
        if series.null_count() or series.is_duplicated().any():
            raise DataError("encoder classes must be distinct and not missing", expected="unique ids")
        encoder = cls()
        encoder.classes_ = series
        return encoder

    @property
    def classes(self) -> pl.Series:
        """The known ids in code order: `classes[k]` has code `FIRST_CODE + k`."""
        return self.classes_

    @property
    def n_codes(self) -> int:
        """Number of codes including the two reserved ones: the size of an embedding table."""
        return len(self.classes_) + FIRST_CODE

    def _codes_by_id(self) -> dict[str, int]:
        # Built once per vocabulary (checked by identity, so a refit or reload rebuilds it).
        cached = getattr(self, "_lookup", None)
        if cached is None or cached[0] is not self.classes_:
            self._lookup = (self.classes_, {c: code for code, c in enumerate(self.classes_.to_list(), FIRST_CODE)})
        return self._lookup[1]

    def transform(self, values: pl.Series | np.ndarray | Iterable[str]) -> np.ndarray:
        """int32 codes of `values`; unseen or missing values get `UNKNOWN_CODE`."""
        if isinstance(values, list | tuple) and len(values) <= _DICT_LOOKUP_MAX:
            # A few ids (one request's user or items): a dict lookup, not a Polars join per call.
            lookup = self._codes_by_id()
            return np.array([UNKNOWN_CODE if v is None else lookup.get(str(v), UNKNOWN_CODE) for v in values], dtype=np.int32)
        known_codes = pl.int_range(FIRST_CODE, self.n_codes, dtype=pl.Int32, eager=True)
        codes = _as_string_series(values).replace_strict(
            self.classes_, known_codes, default=UNKNOWN_CODE, return_dtype=pl.Int32
        )
        return codes.fill_null(UNKNOWN_CODE).to_numpy()

    def fit_transform(self, values: pl.Series | np.ndarray | Iterable[str]) -> np.ndarray:
        series = _as_string_series(values)
        return self.fit(series).transform(series)

    def inverse_transform(self, codes: np.ndarray | Iterable[int]) -> pl.Series:
        """The ids behind `codes` as a String series; padding and unknown codes give null."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= self.n_codes):
            raise ValueError(f"codes must lie in [0, {self.n_codes}); found {codes.min()}..{codes.max()}")
        lookup = pl.concat([pl.Series("class", [None, None], dtype=pl.String), self.classes_])
        return lookup.gather(codes)

    def save(self, path: str | Path) -> None:
        """Writes the vocabulary as JSON."""
        write_header(path, "label_encoder", padding_code=PADDING_CODE, unknown_code=UNKNOWN_CODE,
                     classes=self.classes_.to_list())

    @classmethod
    def load(cls, path: str | Path) -> LabelEncoder:
        """Reads an encoder written by `save`."""
        document = read_header(path, "label_encoder", what="saved label encoder")
        return cls.from_classes(document["classes"])

    def __repr__(self) -> str:
        fitted = f"{len(self.classes_)} classes" if hasattr(self, "classes_") else "not fitted"
        return f"LabelEncoder({fitted})"
