"""Train / validation / test splits of an event log.

Every splitter has `split(log) -> Split`. Rows keep their input order inside each part and keep the
log's schema, so any later stage can treat a part like the whole log. Validation and test parts hold
the *target* events; the history a model sees for a validation target is `train`, and for a test
target it is `train` plus `valid` (the usual leave-one-out evaluation protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import polars as pl

from shopformer.data.schema import EventLog
from shopformer.errors import DataError

__all__ = ["LastNSplit", "LeaveOneOut", "PredefinedSplit", "Split", "Splitter", "TimeSplit"]

_PART = "__split_part"
_TRAIN, _VALID, _TEST, _DROP = 0, 1, 2, 3


@dataclass(frozen=True)
class Split:
    """The three parts of a split; `valid` is None when the protocol has no validation part."""

    train: EventLog
    valid: EventLog | None
    test: EventLog

    def sizes(self) -> dict[str, int]:
        """Rows per part (0 for an absent validation part)."""
        return {"train": len(self.train), "valid": len(self.valid) if self.valid else 0, "test": len(self.test)}


class Splitter(Protocol):
    def split(self, log: EventLog) -> Split: ...


def _split_by_part(log: EventLog, part: pl.Expr, has_valid: bool) -> Split:
    """Cuts the log by an expression giving each row its part (_TRAIN, _VALID, _TEST or _DROP)."""
    frame = log.frame.with_columns(part.cast(pl.Int8).alias(_PART))

    def rows_of(code: int) -> EventLog:
        return log.with_frame(frame.filter(pl.col(_PART) == code).drop(_PART))

    return Split(train=rows_of(_TRAIN), valid=rows_of(_VALID) if has_valid else None, test=rows_of(_TEST))


def _position_from_end() -> pl.Expr:
    """0 for a user's last event, 1 for the one before, … (same-time events: later row is later)."""
    # "ordinal" ranks tied timestamps in row order, so the input order breaks ties without a sort.
    return pl.len().over("user_id") - pl.col("timestamp").rank("ordinal").over("user_id")


class LastNSplit:
    """Per user, the last `n` events are test targets and the `valid_n` before them validation ones.

    Users with no more than `n + valid_n` events would have no history left to learn from, so all
    of their events stay in `train`. With `valid_n=0` the split has no validation part.
    """

    def __init__(self, n: int = 1, valid_n: int = 0) -> None:
        if n < 1 or valid_n < 0:
            raise ValueError("LastNSplit needs n >= 1 and valid_n >= 0")
        self.n = n
        self.valid_n = valid_n

    def split(self, log: EventLog) -> Split:
        position = _position_from_end()
        has_history = pl.len().over("user_id") > self.n + self.valid_n
        part = (
            pl.when(~has_history).then(_TRAIN)
            .when(position < self.n).then(_TEST)
            .when(position < self.n + self.valid_n).then(_VALID)
            .otherwise(_TRAIN)
        )
        return _split_by_part(log, part, has_valid=self.valid_n > 0)


class LeaveOneOut(LastNSplit):
    """The published sequential-recommendation protocol (SASRec, BERT4Rec, S3-Rec …).

    Per user: last event = test target, second-to-last = validation target, the rest = train.
    Users with fewer than 3 events have all their events in `train` (they are never evaluated).
    """

    def __init__(self) -> None:
        super().__init__(n=1, valid_n=1)


def _unix_seconds(moment: int | datetime) -> int:
    if isinstance(moment, datetime):
        # A naive datetime is read as UTC, like the timestamps of the log.
        return int(moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=timezone.utc).timestamp())
    return int(moment)


class TimeSplit:
    """Global cut-offs in time: the realistic protocol where the model never sees the future.

    Events before `valid_start` (or `test_start` when there is no validation cut) are train,
    events in [`valid_start`, `test_start`) validation, events from `test_start` on test. Cut-offs are
    unix seconds or datetimes (naive ones read as UTC).

    With `require_history=True` (the default) only users with an earlier event keep their targets:
    validation rows need a train event of the same user, test rows an event before `test_start`.
    The others' rows are dropped, since a sequence model cannot rank for a user it has never seen.
    """

    def __init__(
        self, test_start: int | datetime, valid_start: int | datetime | None = None, require_history: bool = True
    ) -> None:
        self.test_start = test_start
        self.valid_start = valid_start
        self.require_history = require_history

    def split(self, log: EventLog) -> Split:
        if log.time_resolution == "order":
            raise DataError("a time split needs real timestamps; this log only orders events per user",
                            column="timestamp", expected="time_resolution 'second' or 'day'")
        test_start = _unix_seconds(self.test_start)
        valid_start = test_start if self.valid_start is None else _unix_seconds(self.valid_start)
        if valid_start > test_start:
            raise ValueError("valid_start must not be later than test_start")
        time = pl.col("timestamp")
        part = pl.when(time < valid_start).then(_TRAIN).when(time < test_start).then(_VALID).otherwise(_TEST)
        if self.require_history:
            first_seen = time.min().over("user_id")
            part = (
                pl.when((part == _VALID) & (first_seen >= valid_start)).then(_DROP)
                .when((part == _TEST) & (first_seen >= test_start)).then(_DROP)
                .otherwise(part)
            )
        return _split_by_part(log, part, has_valid=self.valid_start is not None)


class PredefinedSplit:
    """Honours the `split` column of formats that ship a fixed split.

    Values are "train", "valid" (or "validation") and "test"; any other value is an error. The
    validation part is None when no row is marked for it.
    """

    _CODES = {"train": _TRAIN, "valid": _VALID, "validation": _VALID, "test": _TEST}

    def split(self, log: EventLog) -> Split:
        if "split" not in log.frame.columns:
            raise DataError("the log has no 'split' column to follow", column="split")
        values = log.frame["split"]
        unknown = values.filter(~values.is_in(list(self._CODES)) | values.is_null())
        if len(unknown):
            raise DataError("unknown split value", column="split",
                            expected="train, valid or test", found=unknown[0])
        part = pl.col("split").replace_strict(self._CODES, return_dtype=pl.Int8)
        has_valid = bool(values.is_in(["valid", "validation"]).any())
        return _split_by_part(log, part, has_valid=has_valid)
