"""The signals behind bot, abuse and fraud scores: behaviour, shared accounts and sequence surprisal.

Each user of an event log gets signals of how they behave: how fast (median seconds between events
in a session, share of gaps under 2 s, events per active hour), how much and how repetitively
(events per session, views per purchase, sessions that repeat an earlier path) and how they buy
(time from the first visit, or sign-up, to the first purchase, first-day spend, items per order,
units of each item). An account table adds how many accounts share each device or IP address, and
a fitted behaviour model adds how unpredictable a user's items are to it. Every signal has a known
suspicious direction and the sentence it gives as a reason; `insight.anomaly` scores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl
import torch

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.prepare import Sessionizer
from shopformer.data.schema import EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import DataError
from shopformer.models.base import BehaviourModel
from shopformer.runtime import torch_threads

__all__ = ["SHARED_COLUMNS", "SIGNALS", "Signal", "account_features", "behaviour_features", "sequence_surprisal",
           "shared_signal", "surprisal_signal"]

#: Account columns whose values several accounts sharing is suspicious.
SHARED_COLUMNS = ("device_id", "ip_address")
#: Gaps under this many seconds between two events are faster than a person reads a page.
FAST_GAP_SECONDS = 2
#: Sessions with at least this many events count as a path that can be repeated.
_PATH_MIN_EVENTS = 3
#: Surprisal of one step is capped here: an item the model rules out entirely is not infinitely telling.
_MAX_SURPRISE = 30.0


@dataclass(frozen=True)
class Signal:
    """A per-user signal whose suspicious direction is known ("high" or "low")."""

    direction: str
    reason: Callable[[dict], str]
    #: Other signals this one's sentence already says (shown once, in its place).
    covers: tuple[str, ...] = ()


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}{'s' if unit == 'day' and value >= 1.5 else ''}"
    return f"{seconds:.0f} s"


def _pace(row: dict) -> str:
    """ "2223 views 2 s apart, never bought": the pace, in views when they are most of the events."""
    what, count = ("views", row["views"]) if 2 * row["views"] >= row["events"] else ("events", row["events"])
    bought = "never bought" if not row["purchases"] else f"{row['purchases']} purchases"
    return f"{count} {what} {row['median_gap_s']:.0f} s apart, {bought}"


#: The signals the tail score combines, with the sentence each one gives as a reason.
SIGNALS: dict[str, Signal] = {
    "median_gap_s": Signal("low", _pace, covers=("views_per_purchase", "events_per_hour")),
    "fast_gap_share": Signal("high", lambda r: f"{r['fast_gap_share']:.0%} of events under {FAST_GAP_SECONDS} s after the previous one"),
    "events_per_hour": Signal("high", lambda r: f"{r['events_per_hour']:.0f} events per active hour"),
    "events_per_session": Signal("high", lambda r: f"{r['events_per_session']:.0f} events per session over {r['sessions']} sessions"),
    "views_per_purchase": Signal("high", lambda r: f"{r['views']} views, never bought" if not r["purchases"]
                                 else f"{r['views_per_purchase']:.0f} views per purchase"),
    "repeated_path_share": Signal("high", lambda r: f"{r['repeated_path_share']:.0%} of sessions repeat an earlier path"),
    "first_purchase_after_s": Signal("low", lambda r: f"first purchase {_duration(r['first_purchase_after_s'])} after "
                                     f"{'sign-up' if r.get('signed_up') else 'the first visit'}"),
    "first_day_spend": Signal("high", lambda r: f"spent {r['first_day_spend']:,.0f} in the first day"),
    "items_per_order": Signal("high", lambda r: f"{r['items_per_order']:.1f} items per order"),
    "units_per_item": Signal("high", lambda r: f"{r['units_per_item']:.1f} units of each item bought"),
}


def _frame_of(events: EventLog | pl.DataFrame) -> pl.DataFrame:
    frame = events.frame if isinstance(events, EventLog) else events
    missing = [c for c in ("user_id", "item_id", "timestamp", "event_type") if c not in frame.columns]
    if missing:
        raise DataError(f"the events lack the column(s) {', '.join(missing)}; anomaly scores need "
                        "user_id, item_id, timestamp and event_type (timestamp in unix seconds)")
    return frame


def _with_sessions(frame: pl.DataFrame, session_gap: int) -> pl.DataFrame:
    """The events sorted by user and time, with the shop's sessions or, without them, inactivity sessions."""
    if "session_id" in frame.columns and frame["session_id"].null_count() == 0:
        return frame.sort("user_id", "timestamp", maintain_order=True)
    optional = [c for c in ("value", "quantity") if c in frame.columns]
    log = EventLog(frame.select("user_id", "item_id", "timestamp", "event_type", *optional))
    return Sessionizer(session_gap).apply(log).frame


def _session_table(frame: pl.DataFrame) -> pl.DataFrame:
    session = frame.group_by("user_id", "session_id", maintain_order=True).agg(
        n=pl.len(), start=pl.col("timestamp").min(), end=pl.col("timestamp").max(),
        path=pl.col("item_id").fill_null("").str.join("\x1f"), bought=(pl.col("event_type") == "purchase").any(),
    )
    return session.group_by("user_id").agg(
        sessions=pl.len(),
        active_s=(pl.col("end") - pl.col("start") + 60).sum(),
        repeated_path_share=(~pl.col("path").filter(pl.col("n") >= _PATH_MIN_EVENTS).is_first_distinct()).mean(),
        buying_sessions=pl.col("bought").sum(),
    )


def behaviour_features(events: EventLog | pl.DataFrame, *, signup: pl.DataFrame | None = None,
                       session_gap: int = 1800) -> pl.DataFrame:
    """One row per user: the behaviour signals of `SIGNALS` plus counts (events, sessions, views, purchases).

    `events` has the event contract's columns (times in unix seconds; `value`, `quantity` and
    `session_id` are used when present). `signup` (user_id, signup_time) makes the first purchase
    count from sign-up instead of the first visit. Signals a user has no data for are null.
    """
    frame = _with_sessions(_frame_of(events), session_gap)
    if signup is not None:
        frame = frame.join(signup.select("user_id", "signup_time"), on="user_id", how="left")
    has = set(frame.columns)
    amount = (pl.col("value") if "value" in has else pl.lit(0.0)) * (pl.col("quantity").fill_null(1.0) if "quantity" in has else 1.0)
    units = pl.col("quantity").fill_null(1.0) if "quantity" in has else pl.lit(1.0)
    start = pl.min_horizontal(pl.col("signup_time"), pl.col("timestamp").min()) if "signup_time" in has else pl.col("timestamp").min()
    gap = (pl.col("timestamp") - pl.col("timestamp").shift(1)).over("user_id", "session_id")
    purchase = pl.col("event_type") == "purchase"
    per_user = frame.with_columns(gap=gap, start=start.over("user_id"), amount=amount, units=units).group_by("user_id").agg(
        events=pl.len(),
        views=(pl.col("event_type") == "view").sum(),
        purchases=purchase.sum(),
        median_gap_s=pl.col("gap").median().cast(pl.Float64),
        fast_gap_share=(pl.col("gap").drop_nulls() < FAST_GAP_SECONDS).mean().cast(pl.Float64),
        first_purchase_after_s=(pl.col("timestamp").filter(purchase).min() - pl.col("start").first()).cast(pl.Float64),
        first_day_spend=pl.col("amount").filter(purchase & (pl.col("timestamp") - pl.col("start") <= 86_400)).sum().cast(pl.Float64),
        units_per_item=pl.col("units").filter(purchase).mean().cast(pl.Float64),
        signed_up=pl.col("signup_time").is_not_null().any() if "signup_time" in has else pl.lit(False),
    )
    table = per_user.join(_session_table(frame), on="user_id", how="left", maintain_order="left")
    return table.with_columns(
        events_per_hour=pl.col("events") / (pl.col("active_s") / 3600.0),
        events_per_session=pl.col("events") / pl.col("sessions"),
        views_per_purchase=pl.col("views") / pl.max_horizontal(pl.col("purchases"), 1),
        items_per_order=pl.when(pl.col("buying_sessions") > 0).then(pl.col("purchases") / pl.col("buying_sessions")),
    ).drop("active_s", "buying_sessions").sort("user_id")


def shared_signal(column: str) -> Signal:
    """The signal `accounts_per_<column>`: how many accounts share this account's value of `column`."""
    label = column.removesuffix("_id").replace("_", " ")
    return Signal("high", lambda r: f"{label} shared by {r[f'accounts_per_{column}']} accounts")


def account_features(accounts: pl.DataFrame, shared: Sequence[str] = SHARED_COLUMNS) -> tuple[pl.DataFrame, dict[str, Signal]]:
    """`user_id` and `accounts_per_<column>` for each column of `shared` the table has, with their signals.

    Accounts are counted over the whole table: an empty value is nobody's to share and counts 1.
    """
    if "user_id" not in accounts.columns:
        raise DataError("the account table lacks the column user_id", expected="user_id and any of " + ", ".join(shared))
    present = [c for c in shared if c in accounts.columns]
    counts = [pl.when(pl.col(c).is_null()).then(1).otherwise(pl.len().over(c)).cast(pl.Int64).alias(f"accounts_per_{c}")
              for c in present]
    table = accounts.unique("user_id", keep="first", maintain_order=True).select("user_id", *counts)
    return table, {f"accounts_per_{c}": shared_signal(c) for c in present}


def surprisal_signal() -> Signal:
    """The signal `surprisal`: mean -log P(next item) of a user's items under the behaviour model."""
    return Signal("high", lambda r: f"item sequence unlike other shoppers' ({r['surprisal']:.1f} nats per step)")


def _user_arrays(model: BehaviourModel, frame: pl.DataFrame) -> tuple[pl.Series, SequenceArrays]:
    ordered = frame.sort("user_id", "timestamp", maintain_order=True)
    users = ordered.group_by("user_id", maintain_order=True).len()
    offsets = np.concatenate([[0], np.cumsum(users["len"].to_numpy())]).astype(np.int64)
    codes = model.item_codes(ordered["item_id"].fill_null("").to_list()).astype(np.int32)
    vocabulary = {name: k + FIRST_CODE for k, name in enumerate(model.event_vocabulary)}
    types = ordered["event_type"].replace_strict(vocabulary, default=UNKNOWN_CODE, return_dtype=pl.Int8).to_numpy()
    times = ordered["timestamp"].to_numpy().astype(np.int64) if model.uses_time_gaps else None
    return users["user_id"], SequenceArrays(offsets, codes, types, times)


def sequence_surprisal(model: BehaviourModel, events: EventLog | pl.DataFrame, *, steps: int = 32,
                       batch: int = 256) -> pl.DataFrame:
    """`user_id, surprisal`: mean -log P(item) of each user's last `steps` known items given the events
    before them, under a fitted behaviour model (null for users with fewer than two events)."""
    users, arrays = _user_arrays(model, _frame_of(events))
    lengths = arrays.lengths
    # Target positions: each user's last `steps` events after the first, whose item the model knows.
    counts = np.clip(lengths - 1, 0, steps)
    owner = np.repeat(np.arange(len(lengths)), counts)
    first_target = arrays.offsets[1:] - counts
    targets = np.repeat(first_target, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    known = arrays.items[targets] >= FIRST_CODE
    owner, targets = owner[known], targets[known]
    starts = np.maximum(arrays.offsets[owner], targets - model.max_len)
    histories = arrays.windows(starts, targets - starts)
    surprise = np.empty(len(targets))
    with torch_threads(model.num_threads), torch.no_grad():
        for lo in range(0, len(targets), batch):
            rows = np.arange(lo, min(lo + batch, len(targets)))
            log_p = torch.log_softmax(model.score_histories(histories.rows(rows)), dim=1)
            picked = log_p.gather(1, torch.from_numpy(arrays.items[targets[rows]].astype(np.int64))[:, None])[:, 0]
            surprise[rows] = np.minimum(-picked.numpy(), _MAX_SURPRISE)
    total = np.bincount(owner, weights=surprise, minlength=len(lengths))
    n = np.bincount(owner, minlength=len(lengths))
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return pl.DataFrame({"user_id": users, "surprisal": mean}).with_columns(pl.col("surprisal").fill_nan(None))
