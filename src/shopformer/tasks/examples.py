"""Task definitions: labelled examples at cut-off times, split out of time.

Every example is "user u at time `cutoff`, having done their first `history_end` events"; its label
comes only from events at positions >= `history_end`. One set of split times serves every task of
a dataset (so one pre-trained model serves them all):

    start ........ valid_start ........ test_start ........ end
    train cut-offs  | valid cut-off (+h) | test cut-off (+h)  |

- time-based tasks (propensity, item-propensity, churn, next-event-type) label the window
  `[cutoff, cutoff + h)`; train cut-offs end their windows by `valid_start`, the valid cut-off's
  window ends at `test_start`, the test cut-off's at `end`, so no training label is from the test
  period;
- intent uses sessions: those starting in `[test_start, end)` are test, in `[valid_start,
  test_start)` valid (ending before `test_start`), the ones ending before `valid_start` train.

`fit_until` of the context is `test_start`: label-free learning never sees a test event.

A second-resolution log too short for a 1-day horizon (a few hours of REES46) is split the same way
at a finer grain: h is the time its last fifth of the events takes, in whole minutes (a fifth of the
span when events come at an even rate; REES46's sample has most of its events in its last 40
minutes), and the training cut-offs are h apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from shopformer.config import FrozenConfig
from shopformer.data.prepare import Sessionizer, sort_by_user_time
from shopformer.data.schema import CANONICAL_EVENT_TYPES, Catalog, EventLog
from shopformer.errors import ConfigError, DataError
from shopformer.tasks.base import (
    BINARY_CLASSES,
    EXAMPLE_COLUMNS,
    TASKS,
    TaskContext,
    TaskExamples,
)

logger = logging.getLogger(__name__)

__all__ = ["DAY", "MINUTE", "SplitTimes", "TaskConfig", "build_examples", "event_classes", "live_context", "live_examples", "split_times",
           "task_context"]

DAY = 86_400
MINUTE = 60
_KEY_SHIFT = 2**34  # per-user offset of the sortable (user, time) key: > any span of timestamps


class TaskConfig(FrozenConfig):
    """How examples are cut. Unknown keys are an error."""

    config_name: ClassVar[str] = "task"

    #: Label window h of the time-based tasks, and the length of the valid and test periods.
    #: Default: a fifth of the log's span, 1 to 7 days (second-resolution logs too short for that:
    #: the minutes its last fifth of the events takes).
    horizon_days: int | None = Field(None, ge=1)
    #: Spacing of the training cut-offs (on a log of hours: h), and how many of the latest ones are used.
    step_days: int = Field(1, ge=1)
    max_train_cutoffs: int = Field(8, ge=1)
    #: A user is active at a cut-off with an event in the `lookback_days` before it; item-propensity
    #: candidates are the items the user viewed/carted in that window.
    lookback_days: int = Field(28, ge=1)
    #: Intent examples after the first n events of a session (plus "all" non-purchase events).
    prefix_lengths: tuple[int, ...] = (1, 2, 3, 5)
    #: Item-propensity: at most this many most recent candidate items per user and cut-off.
    max_candidate_items: int = Field(10, ge=1)
    #: Inactivity that ends a session in second-resolution logs without a session column.
    session_gap_seconds: int = Field(1800, ge=1)



@dataclass(frozen=True)
class SplitTimes:
    """Boundaries of the out-of-time splits (timestamps), the label window and the spacing of the
    training cut-offs (seconds)."""

    start: int
    valid_start: int
    test_start: int
    end: int
    horizon: int
    step: int = DAY

    def cutoffs(self, config: TaskConfig) -> list[tuple[int, str]]:
        """(cut-off, split) pairs of the time-based tasks, oldest first."""
        latest = self.valid_start - self.horizon
        train = [t for t in range(latest, self.start, -self.step)][: config.max_train_cutoffs]
        return [(t, "train") for t in reversed(train)] + [(self.valid_start, "valid"), (self.test_start, "test")]


def split_times(events: pl.DataFrame, time_resolution: str, config: TaskConfig) -> SplitTimes:
    """The split boundaries of a log: the last two horizons are the test and valid periods."""
    if events.height == 0:
        raise DataError("the event log is empty: there is nothing to build task examples from")
    start, last = int(events["timestamp"].min()), int(events["timestamp"].max())
    end = last + (DAY if time_resolution == "day" else 1)
    span_days = (end - start) / DAY
    days = config.horizon_days or int(min(7, max(1, span_days // 5)))
    horizon, step = days * DAY, config.step_days * DAY
    if end - 2 * horizon - step <= start:
        if config.horizon_days is None and time_resolution == "second":
            return _sub_day_split_times(events["timestamp"], start, end)
        raise ConfigError(f"the log spans {span_days:.1f} days, too short for a {days}-day horizon: the "
                          f"train, valid and test periods need more than {2 * days + config.step_days} days")
    return SplitTimes(start, end - 2 * horizon, end - horizon, end, horizon, step)


def _sub_day_split_times(timestamps: pl.Series, start: int, end: int) -> SplitTimes:
    """Splits of a log of hours: h is the time its last fifth of the events takes, rounded up to whole
    minutes; the training cut-offs are h apart, so the train period needs more than one h."""
    # By events, not by the span: a sample whose events bunch up at its end keeps most of them for
    # training instead of putting them all in the test period.
    last_fifth = end - int(timestamps.quantile(0.8, "lower"))
    horizon = -(-last_fifth // MINUTE) * MINUTE
    if end - 3 * horizon <= start:
        raise ConfigError(f"the log spans {(end - start) / MINUTE:.1f} minutes, too short for a {horizon // MINUTE}-minute "
                          f"horizon (the time its last fifth of the events takes): the train, valid and test "
                          f"periods need more than {3 * horizon // MINUTE} minutes")
    return SplitTimes(start, end - 2 * horizon, end - horizon, end, horizon, horizon)


def task_context(log: EventLog, catalog: Catalog | None, config: TaskConfig | None = None) -> TaskContext:
    """The context every task of this log shares: sessions marked, `fit_until` = test start."""
    config = config or TaskConfig()
    log = _with_sessions(log, config.session_gap_seconds)
    times = split_times(log.frame, log.time_resolution, config)
    return TaskContext.from_log(log, catalog, fit_until=times.test_start)


def live_context(log: EventLog, catalog: Catalog | None, config: TaskConfig | None = None) -> TaskContext:
    """A context for scoring (no labels, no splits): sessions marked, nothing held out."""
    config = config or TaskConfig()
    log = _with_sessions(log, config.session_gap_seconds)
    last = int(log.frame["timestamp"].max()) if log.frame.height else 0
    return TaskContext.from_log(log, catalog, fit_until=last + 1)


def _with_sessions(log: EventLog, gap_seconds: int) -> EventLog:
    """Keeps a complete `session_id` of second-resolution logs; else cuts sessions by the gap.

    A session interrupted by another session of the same user (two tabs, as in REES46) is split
    into its uninterrupted parts, each a session of its own, and a warning says how many. On
    day-granular logs the session is always the user-day; a log that only orders events is refused.
    """
    if log.time_resolution == "order":
        raise ConfigError("behaviour prediction tasks need timestamps; this log only orders events")
    frame = log.frame
    keep = log.time_resolution == "second" and "session_id" in frame.columns and frame["session_id"].null_count() == 0
    if not keep:
        return Sessionizer(gap_seconds).apply(log)
    ordered = sort_by_user_time(log).frame
    changes = (ordered["session_id"] != ordered["session_id"].shift(1)) | (ordered["user_id"] != ordered["user_id"].shift(1))
    runs = int(changes.fill_null(True).sum())
    sessions = ordered.select(pl.struct("user_id", "session_id").n_unique()).item()
    if runs == sessions:
        return log
    key = ["user_id", "session_id"]
    ordered = ordered.with_columns(_run=changes.fill_null(True).cum_sum()).with_columns(
        _parts=pl.col("_run").n_unique().over(key), _part=pl.col("_run").rank("dense").over(key))
    split = ordered.filter(pl.col("_parts") > 1).select(pl.struct(key).n_unique()).item()
    logger.warning("%d of %d sessions are interrupted by another session of the same user: each uninterrupted "
                   "part counts as a session of its own", split, sessions)
    session = pl.when(pl.col("_parts") > 1).then(pl.format("{}~{}", "session_id", "_part")).otherwise("session_id")
    return EventLog(ordered.with_columns(session_id=session).drop("_run", "_parts", "_part"), log.time_resolution)


def event_classes(context: TaskContext) -> tuple[str, ...]:
    """The canonical event types that occur in the log, in canonical order (next-event-type classes)."""
    present = set(context.events["event_type"].unique().to_list())
    return tuple(t for t in CANONICAL_EVENT_TYPES if t in present)


def build_examples(task: str, context: TaskContext, config: TaskConfig | None = None) -> TaskExamples:
    """Labelled train/valid/test examples of `task` (one of `TASKS`) on the context's log."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    config = config or TaskConfig()
    times = split_times(context.events, context.time_resolution, config)
    if task == "intent":
        return _numbered(TaskExamples(task, _intent(context, times, config)))
    grid = _user_cutoffs(context, times, config)
    if task == "item-propensity":
        return _numbered(TaskExamples(task, _item_candidates(context, grid, times, config)))
    if task == "next-event-type":
        classes = event_classes(context)
        has_next = grid.filter(pl.col("n_next") > 0)
        label = pl.col("next_type").replace_strict({c: i for i, c in enumerate(classes)}, return_dtype=pl.Int64)
        return _numbered(TaskExamples(task, has_next.with_columns(label=label), classes))
    label = (pl.col("n_purchases") > 0) if task == "propensity" else (pl.col("n_next") == 0)
    return _numbered(TaskExamples(task, grid.with_columns(label=label.cast(pl.Int64))))


def _numbered(examples: TaskExamples) -> TaskExamples:
    """Canonical column order and types, extra task columns after, `example_id` = row number."""
    frame = examples.frame.with_columns(example_id=pl.int_range(pl.len(), dtype=pl.Int64))
    extra = [c for c in ("session_id", "item_id", "prefix") if c in frame.columns]
    frame = frame.select([pl.col(c).cast(t) for c, t in EXAMPLE_COLUMNS.items()] + extra)
    return TaskExamples(examples.task, frame, examples.classes)


def _user_cutoffs(context: TaskContext, times: SplitTimes, config: TaskConfig) -> pl.DataFrame:
    """Active users at every cut-off with their history length, future purchases and next event."""
    events = context.events
    starts = np.flatnonzero(events["position"].to_numpy() == 0)
    user_ids, offsets = events["user_id"].gather(starts), np.append(starts, events.height)
    lengths = np.diff(offsets)
    stamps = events["timestamp"].to_numpy() - times.start
    keys = np.repeat(np.arange(len(starts)), lengths) * _KEY_SHIFT + stamps
    type_names = events["event_type"].unique(maintain_order=True)
    type_codes = events["event_type"].replace_strict(type_names, pl.int_range(len(type_names), eager=True)).to_numpy()
    purchase_keys = keys[events["event_type"].to_numpy() == "purchase"]
    base = np.arange(len(starts)) * _KEY_SHIFT
    parts = []
    for cutoff, split in times.cutoffs(config):
        t, t_end = cutoff - times.start, cutoff - times.start + times.horizon
        before = np.searchsorted(keys, base + t)
        history = before - offsets[:-1]
        last = stamps[np.maximum(before - 1, 0)]
        active = (history > 0) & (last >= t - config.lookback_days * DAY)
        n_next = np.searchsorted(keys, base + t_end) - before
        n_purchases = np.searchsorted(purchase_keys, base + t_end) - np.searchsorted(purchase_keys, base + t)
        next_type = type_codes[np.minimum(before, len(type_codes) - 1)]
        parts.append(pl.DataFrame({
            "user_id": user_ids.filter(active), "history_end": history[active], "cutoff": np.full(active.sum(), cutoff),
            "split": np.full(active.sum(), split), "n_next": n_next[active], "n_purchases": n_purchases[active],
            "next_type": type_names.gather(next_type[active]),
        }))
    return pl.concat(parts)


def _item_candidates(context: TaskContext, grid: pl.DataFrame, times: SplitTimes, config: TaskConfig) -> pl.DataFrame:
    """(user, cut-off, item) for the items viewed/carted in the lookback window; 1 if bought in the window."""
    recent = (
        grid.select("user_id", "cutoff", "history_end", "split")
        .join(context.events.select("user_id", "item_id", "timestamp", "event_type", "position"), on="user_id")
        .filter((pl.col("position") < pl.col("history_end")) & (pl.col("event_type") != "purchase")
                & (pl.col("timestamp") >= pl.col("cutoff") - config.lookback_days * DAY))
        .group_by("user_id", "cutoff", "history_end", "split", "item_id").agg(pl.col("position").max().alias("last_seen"))
        .filter(pl.col("last_seen").rank("ordinal", descending=True).over("user_id", "cutoff") <= config.max_candidate_items)
    )
    purchases = context.events.filter(pl.col("event_type") == "purchase").select("user_id", "item_id", "timestamp")
    bought = (
        recent.select("user_id", "cutoff", "item_id").join(purchases, on=["user_id", "item_id"])
        .filter((pl.col("timestamp") >= pl.col("cutoff")) & (pl.col("timestamp") < pl.col("cutoff") + times.horizon))
        .select("user_id", "cutoff", "item_id").unique().with_columns(label=pl.lit(1, pl.Int64))
    )
    labelled = recent.join(bought, on=["user_id", "cutoff", "item_id"], how="left").with_columns(pl.col("label").fill_null(0))
    return labelled.sort("cutoff", "user_id", "last_seen", descending=[False, False, True])


def _before_purchase() -> pl.Expr:
    """True for a session's events before its first purchase, False from that purchase on."""
    return (pl.col("event_type") == "purchase").cast(pl.Int64).cum_sum().over("user_id", "session_id") == 0


def _intent(context: TaskContext, times: SplitTimes, config: TaskConfig) -> pl.DataFrame:
    """One example per session and prefix: the first n events (all purchase-free), or all of them."""
    events = context.events.with_columns(
        is_purchase=pl.col("event_type") == "purchase",
        before_purchase=_before_purchase(),
    )
    sessions = events.group_by("user_id", "session_id", maintain_order=True).agg(
        first=pl.col("position").min(), start=pl.col("timestamp").min(), last=pl.col("timestamp").max(),
        free=(pl.col("before_purchase") & ~pl.col("is_purchase")).sum().cast(pl.Int64),
        label=pl.col("is_purchase").any().cast(pl.Int64),
    )
    split = (pl.when(pl.col("start") >= times.test_start).then(pl.lit("test"))
             .when((pl.col("start") >= times.valid_start) & (pl.col("last") < times.test_start)).then(pl.lit("valid"))
             .when(pl.col("last") < times.valid_start).then(pl.lit("train")))
    sessions = sessions.with_columns(split=split).filter(pl.col("split").is_not_null())
    prefixes = [sessions.filter(pl.col("free") >= n).with_columns(prefix=pl.lit(str(n)), n=pl.lit(n, pl.Int64))
                for n in sorted(set(config.prefix_lengths))]
    prefixes.append(sessions.filter(pl.col("free") >= 1).with_columns(prefix=pl.lit("all"), n=pl.col("free")))
    frame = pl.concat(prefixes).with_columns(history_end=pl.col("first") + pl.col("n"))
    # The prediction is made right after the prefix's last event: that event's time is the cut-off.
    last_seen = events.select("user_id", pl.col("position") + 1, pl.col("timestamp").alias("cutoff"))
    frame = frame.join(last_seen.rename({"position": "history_end"}), on=["user_id", "history_end"])
    return frame.sort("start", "user_id", "session_id", "n")


def live_examples(task: str, context: TaskContext, now: int, config: TaskConfig | None = None,
                  users: list[str] | None = None, sessions: list[str] | None = None) -> TaskExamples:
    """Unlabelled examples at time `now` (label -1, split "live") over every event up to `now`.

    Intent: each user's last session (or the given `sessions`), its events before any purchase.
    Item-propensity: the user's recent viewed/carted items. Other tasks: one example per user.
    """
    config = config or TaskConfig()
    events = context.events.filter(pl.col("timestamp") <= now)
    if users is not None:
        events = events.filter(pl.col("user_id").is_in(users))
    if task == "intent":
        frame = _live_sessions(events, sessions)
    else:
        frame = events.group_by("user_id", maintain_order=True).agg(history_end=pl.len().cast(pl.Int64))
        frame = frame.with_columns(cutoff=pl.lit(now, pl.Int64))
        if task == "item-propensity":
            grid = frame.with_columns(split=pl.lit("live"), n_next=0, n_purchases=0)
            times = SplitTimes(now - 1, now, now, now, 0)
            frame = _item_candidates(context, grid, times, config).drop("label")
    frame = frame.with_columns(label=pl.lit(-1, pl.Int64), split=pl.lit("live"))
    classes = event_classes(context) if task == "next-event-type" else BINARY_CLASSES
    return _numbered(TaskExamples(task, frame, classes))


def _live_sessions(events: pl.DataFrame, sessions: list[str] | None) -> pl.DataFrame:
    """Prefix examples of sessions: the last of each user, or those named (an unknown name is an error)."""
    marked = events.with_columns(before_purchase=_before_purchase())
    per_session = marked.group_by("user_id", "session_id", maintain_order=True).agg(
        history_end=pl.col("position").filter(pl.col("before_purchase")).max() + 1,
        cutoff=pl.col("timestamp").filter(pl.col("before_purchase")).max(), last=pl.col("position").max(),
    ).filter(pl.col("history_end").is_not_null())
    if sessions is None:
        return per_session.filter(pl.col("last") == pl.col("last").max().over("user_id")).drop("last")
    missing = sorted(set(sessions) - set(per_session["session_id"].to_list()))
    if missing:
        raise DataError(f"no session {missing[0]!r} with an event before a purchase in the task data",
                        column="session_id", expected="a session id of the log")
    return per_session.filter(pl.col("session_id").is_in(sessions)).drop("last")
