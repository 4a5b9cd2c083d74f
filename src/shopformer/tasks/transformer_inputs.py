"""What the Transformer task models read of each example: its visible events as model inputs.

Every example's visible events (the one gate, `visible_events`) are cut to the last `max_len`,
encoded with the behaviour model's own item, event-type and time codes, and summarised in
scalars the padded sequence cannot carry (`EXTRAS`, `CANDIDATE_EXTRAS`). All vectorised in Polars
and NumPy: no loop over events or examples.

`unseen_future` tells apart the examples whose future the behaviour model was pre-trained on: a
next-item model trained on a user's later events has learned, at that user's cut-off, that the
sequence goes on (and with what), so its state there leaks the label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from torch import Tensor

from shopformer.data.codes import UNKNOWN_CODE
from shopformer.data.prepare import LabelEncoder
from shopformer.data.schema import CANONICAL_EVENT_TYPES
from shopformer.data.sequences import SequenceArrays
from shopformer.models.base import BehaviourModel
from shopformer.models.inputs import gather_windows
from shopformer.tasks.base import TaskContext, TaskExamples, visible_events

__all__ = ["CANDIDATE_EXTRAS", "EXTRAS", "NEXT_ITEM_EXTRAS", "TaskInputs", "example_rows", "learnable_rows", "task_inputs", "unseen_future"]

logger = logging.getLogger(__name__)

#: Scalar inputs of every example, and the extra ones of examples with a candidate item.
#: Counts run over every visible event (the sequence keeps only the last `max_len`); the session is
#: the one of the last visible event.
EXTRAS = ("log_hours_since_last_event", "log_hours_since_first_event", "log_visible_events",
          *(f"log_{kind}_events" for kind in CANONICAL_EVENT_TYPES), "log_session_events", "log_session_carts")
#: What the pre-trained next-item distribution says: its entropy, and how likely the items of the
#: current session are to come next (a user who likes what they see keeps coming back to it).
NEXT_ITEM_EXTRAS = ("next_item_entropy", "session_items_max_log_probability", "session_items_mean_log_probability")
CANDIDATE_EXTRAS = ("log_candidate_events", "candidate_carted", "log_hours_since_candidate", "candidate_next_log_probability")
#: Floor of the next-item log-probability (the unknown item scores -inf).
_LOG_PROBABILITY_FLOOR = -30.0
#: Least share of examples with an unseen future to fit on them alone.
_MIN_UNSEEN = 0.2
_BATCH = 1024


@dataclass
class TaskInputs:
    """Model inputs of examples, one row per example in frame order."""

    histories: SequenceArrays  # the last max_len visible events, as behaviour-model codes
    session_items: SequenceArrays  # the item codes of those events in the current session
    extras: np.ndarray  # (n, n_extras) float32, not yet standardised
    candidates: np.ndarray | None  # item codes of item-level tasks
    #: Pooled states of the untouched behaviour encoder, computed once by the first frozen model.
    frozen_states: Tensor | None = None

    def rows(self, rows: np.ndarray) -> TaskInputs:
        """The inputs of `rows` only."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return TaskInputs(self.histories.rows(rows), self.session_items.rows(rows), self.extras[rows],
                          pick(self.candidates), pick(self.frozen_states))

    def session_batch(self, rows: np.ndarray) -> Tensor:
        """Left-padded session item codes of `rows` (at least one column, 0 = none)."""
        batch = gather_windows(self.session_items, self.session_items.offsets[:-1][rows], self.session_items.offsets[1:][rows])
        return batch.items if batch.items.shape[1] else torch.zeros((len(rows), 1), dtype=torch.long)


def task_inputs(behaviour: BehaviourModel, examples: TaskExamples, context: TaskContext) -> TaskInputs:
    """Encodes every example's visible events for `behaviour` (vectorised, no per-event loop)."""
    rows = examples.frame.select("example_id", "cutoff").with_row_index("row")
    visible = visible_events(context, examples).join(rows, on="example_id").sort("row", "position")
    summary = _history_summary(visible, rows)
    extras = [summary[name].to_numpy() for name in EXTRAS]
    from_end = pl.len().over("row").cast(pl.Int64) - pl.int_range(pl.len(), dtype=pl.Int64).over("row")
    session = pl.col("session_id") == pl.col("session_id").last().over("row") if "session_id" in visible.columns else pl.lit(True)
    recent = visible.filter(from_end <= behaviour.max_len).with_columns(in_session=session)
    histories, in_session = _encode(behaviour, recent, examples.frame.height, rows["cutoff"].to_numpy())
    session_counts = np.bincount(np.repeat(np.arange(len(histories.lengths)), histories.lengths)[in_session],
                                 minlength=len(histories.lengths))
    session_items = SequenceArrays(np.concatenate([[0], np.cumsum(session_counts)]).astype(np.int64),
                                   histories.items[in_session])
    candidates = None
    if "item_id" in examples.frame.columns:
        candidates = behaviour.item_codes(examples.frame["item_id"].to_list()).astype(np.int64)
        candidate = _candidate_summary(visible, examples.frame.select("item_id").with_row_index("row"), rows)
        extras += [candidate[name].to_numpy() for name in CANDIDATE_EXTRAS[:-1]]
    inputs = TaskInputs(histories, session_items, np.zeros((len(histories.lengths), 0), np.float32), candidates)
    extras += _next_item_extras(behaviour, inputs)
    inputs.extras = np.stack(extras, axis=1).astype(np.float32)
    return inputs


def _next_item_extras(behaviour: BehaviourModel, inputs: TaskInputs) -> list[np.ndarray]:
    """`NEXT_ITEM_EXTRAS` (+ log P(next item = candidate) with candidates) from the pre-trained
    model's next-item log-probabilities, transition prior blended in, one batch at a time."""
    n, candidates = len(inputs.histories.lengths), inputs.candidates
    out = np.zeros((n, len(NEXT_ITEM_EXTRAS) + (candidates is not None)), dtype=np.float32)
    for start in range(0, n, _BATCH):
        rows = np.arange(start, min(start + _BATCH, n))
        log_p = torch.log_softmax(behaviour.score_histories(inputs.histories.rows(rows)), dim=1)
        entropy = -(log_p.exp() * log_p.nan_to_num(neginf=0.0)).sum(1)
        items = inputs.session_batch(rows)
        seen = log_p.gather(1, items).clamp(min=_LOG_PROBABILITY_FLOOR)
        mask = items != 0
        count = mask.sum(1).clamp(min=1)
        columns = [entropy, seen.masked_fill(~mask, _LOG_PROBABILITY_FLOOR).max(1).values,
                   (seen * mask).sum(1) / count]
        if candidates is not None:
            columns.append(log_p.gather(1, torch.from_numpy(candidates[rows])[:, None])[:, 0].clamp(min=_LOG_PROBABILITY_FLOOR))
        out[rows] = torch.stack(columns, dim=1).numpy()
    return list(out.T)


def unseen_future(behaviour: BehaviourModel, examples: TaskExamples) -> np.ndarray:
    """Whether `behaviour` was pre-trained without any event at or after each example's cut-off.

    A next-item model trained on a user's later events has learned, at that user's cut-off, that
    the sequence goes on (and with what): its state there leaks the label of churn or propensity.
    Such states look nothing like those at a new cut-off, so heads learn only from examples whose
    future the encoder never saw: users it was not trained on, or cut-offs after its last event.
    """
    frame = examples.frame
    seen_user = behaviour.encode_users(frame["user_id"].to_list()) != UNKNOWN_CODE
    last_event = behaviour.last_event_time()
    last_event = np.iinfo(np.int64).max if last_event is None else last_event
    return ~seen_user | (frame["cutoff"].to_numpy() > last_event)


def _log_hours(seconds: pl.Expr) -> pl.Expr:
    return (seconds.clip(lower_bound=0) / 3600.0).log1p()


def _log_count(condition: pl.Expr) -> pl.Expr:
    return condition.sum().cast(pl.Float64).log1p()


def _history_summary(visible: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    session = pl.col("session_id") == pl.col("session_id").last() if "session_id" in visible.columns else pl.lit(True)
    stats = visible.group_by("row").agg(
        *(_log_count(pl.col("event_type") == kind).alias(f"log_{kind}_events") for kind in CANONICAL_EVENT_TYPES),
        first=pl.col("timestamp").min(), last=pl.col("timestamp").max(),
        log_visible_events=pl.len().cast(pl.Float64).log1p(),
        log_session_events=_log_count(session), log_session_carts=_log_count(session & (pl.col("event_type") == "cart")),
    )
    joined = rows.join(stats, on="row", how="left").sort("row")
    return joined.select(
        *EXTRAS[2:],
        log_hours_since_last_event=_log_hours(pl.col("cutoff") - pl.col("last")),
        log_hours_since_first_event=_log_hours(pl.col("cutoff") - pl.col("first")),
    ).fill_null(0.0)


def _candidate_summary(visible: pl.DataFrame, candidates: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    met = visible.join(candidates, on=["row", "item_id"], how="inner")
    stats = met.group_by("row").agg(
        n=pl.len(), carted=(pl.col("event_type") == "cart").any().cast(pl.Float64), last=pl.col("timestamp").max()
    )
    joined = rows.join(stats, on="row", how="left").sort("row")
    return joined.select(
        log_candidate_events=pl.col("n").fill_null(0).cast(pl.Float64).log1p(),
        candidate_carted=pl.col("carted").fill_null(0.0),
        # Never met: as if met long ago (a year), so "recent" stays monotone in the value.
        log_hours_since_candidate=_log_hours(pl.col("cutoff") - pl.col("last")).fill_null(float(np.log1p(24 * 365))),
    )


def _encode(behaviour: BehaviourModel, recent: pl.DataFrame, n_rows: int, cutoffs: np.ndarray):
    """CSR sequences of behaviour-model codes, and which of their events are in the current session;
    an example without visible events gets one unknown-item event at its cut-off, so every row has
    a state to read."""
    counts = np.bincount(recent["row"].to_numpy(), minlength=n_rows)
    empty = np.flatnonzero(counts == 0)
    items = behaviour.item_codes(recent["item_id"].to_list()).astype(np.int64)
    types = LabelEncoder.from_classes(behaviour.event_vocabulary).transform(recent["event_type"]).astype(np.int64)
    times = recent["timestamp"].to_numpy().astype(np.int64)
    in_session = recent["in_session"].to_numpy()
    if len(empty):
        at = np.cumsum(counts)[empty]  # where each empty row starts
        items, types = np.insert(items, at, UNKNOWN_CODE), np.insert(types, at, UNKNOWN_CODE)
        times, in_session = np.insert(times, at, cutoffs[empty]), np.insert(in_session, at, False)
        counts[empty] = 1
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    histories = SequenceArrays(offsets, items, types, times if behaviour.uses_time_gaps else None)
    return histories, in_session


def learnable_rows(behaviour: BehaviourModel, examples: TaskExamples) -> np.ndarray:
    """The examples heads learn from: `unseen_future`, or all of them where that leaves one class or
    too few (a bundle trained on every user up to the end of the log: there is no cleaner choice)."""
    keep = unseen_future(behaviour, examples)
    if keep.sum() < _MIN_UNSEEN * len(examples) or len(np.unique(examples.labels[keep])) < 2:
        logger.warning("%s: the behaviour model saw the future of most examples; fitting on all of them", examples.task)
        return np.ones(len(examples), dtype=bool)
    return keep


def example_rows(examples: TaskExamples, keep: np.ndarray) -> TaskExamples:
    """The examples where `keep` is True."""
    return TaskExamples(examples.task, examples.frame.filter(pl.Series(keep)), examples.classes)
