"""`explain`: why a user got a recommendation or a task prediction, as a JSON-ready dict.

    explain(model, "u17")                                   # the user's top recommendation
    explain(model, "u17", item="sku-9")                     # the score of one item
    explain(model, "u17", task="churn", tasks=predictor)    # a task model's probability
    explain(model, "u17", method="occlusion")               # exact leave-one-out drops instead

Weights come from `insight.attribution` over the user's last `MAX_EVENTS` events. The default is
Banzhaf (64 random partial histories, one batched forward pass): on Amazon Beauty and the demo shop
its top events are the ones whose removal lowers the score most (deletion curves below the
most-recent-first baseline, where leave-one-out ties it: `benchmarks/results/insight_explain.json`).
`occlusion` gives each event's exact leave-one-out drop; `integrated_gradients` integrates the
gradient along the input embeddings and is the least faithful of the three there.

Item targets are explained in log-probability of the item being next; task targets in probability.
Task targets are re-scored through the `TaskPredictor` itself (features, booster, calibration),
each variant of the history as a user of its own in one `predict_users` call; task IG follows the
task model's Transformer head, the differentiable part of it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.schema import Catalog, EventLog
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError, ShopformerError, UnknownUserError
from shopformer.evaluate.ranking import history_cells, top_k_items
from shopformer.insight.attribution import Attribution, MaskScorer, banzhaf, leave_one_out_masks, occlusion
from shopformer.insight.explain import (
    UNKNOWN_ITEM,
    EventInfo,
    attribute_groups,
    head_gradients,
    item_details,
    next_item_gradients,
    next_item_scorer,
    sentence,
)
from shopformer.predict.tasks import TaskPredictor
from shopformer.tasks.base import TASKS, TaskExamples
from shopformer.tasks.examples import live_context, live_examples
from shopformer.tasks.hybrid import HybridTaskModel
from shopformer.tasks.transformer_inputs import task_inputs
from shopformer.tasks.transformer_models import TransformerTaskModel

if TYPE_CHECKING:  # `Shopformer.explain` calls this module: importing the estimator here would make a cycle
    from shopformer.predict.estimator import Shopformer

__all__ = ["MAX_EVENTS", "METHODS", "TaskScorer", "UnknownItemError", "explain", "task_events", "task_gradients"]

#: Attribution methods (`insight.attribution`), the first the default: each one batched forward pass
#: (IG a backward pass too).
METHODS = ("banzhaf", "occlusion", "integrated_gradients")
#: Most recent events an explanation weighs (the model's own window is 50 by default).
MAX_EVENTS = 50
#: Attribute groups returned beside the events (largest |weight| first).
_TOP_GROUPS = 3
_HEADLINES = {"intent": "Purchase intent in this session is {p}", "churn": "Churn risk is {p}",
              "propensity": "The chance of a purchase in the next {days} days is {p}",
              "item-propensity": "The chance of buying {title} is {p}",
              "next-event-type": "The next event is most likely a {cls} ({p})"}


class UnknownItemError(LookupError, ShopformerError):
    """An item id the model does not know: the service answers 404 (it maps `LookupError`)."""


def explain(estimator: Shopformer, user_id: str, item: str | None = None, task: str | None = None, k: int = 5,
            method: str = "banzhaf", *, tasks: TaskPredictor | None = None, catalog: Catalog | None = None,
            history: SequenceArrays | None = None, events: pl.DataFrame | None = None, now: int | None = None,
            steps: int = 32) -> dict[str, Any]:
    """Which of `user_id`'s past events pushed a prediction, with signed weights, and why in one sentence.

    Without `task`: the score of `item` (default: the user's top recommendation, seen items
    filtered) after the user's stored history, or `history` (one row of item codes, event-type codes
    and times, such as the service's live state). With `task`: the probability of `tasks`' model of
    that task (next-event-type: its most likely class; item-propensity: `item` or the top candidate)
    for the user's events in the task log, or `events` (user_id, item_id, timestamp, event_type),
    scored at `now` (default: a second after the task log's end, later than anything the behaviour
    model was fitted on, as in the service's live scoring: every variant is then scored alike).
    `method` is one of `METHODS`; `steps` the integration points of integrated gradients.

    `catalog` adds titles (brand and category come from the item table otherwise). Returns `user_id,
    target, score, units, method, events` (the `k` events of largest |weight|: position in the
    explained history, oldest first, item_id, event_type, timestamp, title, category, brand, weight),
    `groups` (attribute values whose events matter together) and `sentence`.
    Raises `UnknownUserError` for a user without events, `UnknownItemError` for an item the model (or
    the user's item-propensity candidates) lacks, both `LookupError`s (404); `ConfigError` for a bad request.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if task is None:
        return _explain_item(estimator, str(user_id), item, k, method, catalog, history, steps)
    if tasks is None:
        raise ConfigError("task explanations need the bundle's task models: pass tasks=TaskPredictor.load(bundle_dir)")
    return _explain_task(estimator, tasks, str(user_id), task, item, k, method, catalog, events, now, steps)


# ----------------------------------------------------------------------------- recommendations


def _explain_item(estimator: Shopformer, user_id: str, item: str | None, k: int, method: str,
                  catalog: Catalog | None, history: SequenceArrays | None, steps: int) -> dict[str, Any]:
    history = (estimator.user_histories([user_id]) if history is None else history).keep_last(MAX_EVENTS)
    if len(history.lengths) != 1 or history.lengths[0] == 0:
        raise UnknownUserError(f"user {user_id!r} has no events to explain a recommendation from")
    target, from_model = _target_item(estimator, history, item)
    infos = _history_events(estimator, history, catalog)
    members = attribute_groups(infos)
    scorer = next_item_scorer(estimator, history, target)
    attribution = _attribute(scorer, members, len(infos), method, lambda: next_item_gradients(estimator, history, target, steps))
    item_id = str(estimator.item_features.item_ids[target])
    details = item_details(estimator.item_features, [item_id], catalog)[0]
    headline = f"Recommended {details['title'] or item_id}"
    text = (sentence(headline, infos, attribution.weights, attribution.groups, members)
            if from_model else f"{headline}: it is popular, and none of your events is an item the model knows.")
    target_info = {"item_id": item_id, **{key: details[key] for key in ("title", "category", "brand")}}
    return _document(user_id, target_info, attribution, "log-probability of the item being next", infos, members, k, text)


def _target_item(estimator: Shopformer, history: SequenceArrays, item: str | None) -> tuple[int, bool]:
    """The code of `item` (or of the top recommendation) and whether the model (not popularity) scored it."""
    scores, from_model = estimator.scores_with_fallback(history)
    if item is not None:
        code = int(estimator.item_codes([item])[0])
        if code < FIRST_CODE:
            raise UnknownItemError(f"unknown item {item!r}: it is not in this model's catalog")
        return code, bool(from_model[0])
    codes, _ = top_k_items(scores, 1, exclude=history_cells(history))
    return int(codes[0, 0]), bool(from_model[0])


def _history_events(estimator: Shopformer, history: SequenceArrays, catalog: Catalog | None) -> list[EventInfo]:
    features, vocabulary = estimator.item_features, estimator.event_vocabulary
    ids = [str(i) for i in features.item_ids[history.items]]
    types = history.event_types if history.event_types is not None else np.full(len(ids), estimator.default_event_type)
    details = item_details(features, ids, catalog)
    times = history.timestamps
    return [EventInfo(j, ids[j] if history.items[j] != UNKNOWN_CODE else UNKNOWN_ITEM,
                      vocabulary[t - FIRST_CODE] if FIRST_CODE <= t < len(vocabulary) + FIRST_CODE else "unknown",
                      None if times is None else int(times[j]), **details[j])
            for j, t in enumerate(int(t) for t in types)]


# ----------------------------------------------------------------------------- task predictions


def _explain_task(estimator: Shopformer, predictor: TaskPredictor, user_id: str, task: str, item: str | None, k: int,
                  method: str, catalog: Catalog | None, events: pl.DataFrame | None, now: int | None,
                  steps: int) -> dict[str, Any]:
    if task not in predictor.models:
        known = ", ".join(predictor.models) or "none"
        raise ConfigError(f"no {task!r} task model to explain (tasks: {', '.join(TASKS)}; this bundle has {known})")
    ordered = task_events(predictor, user_id, events)
    now = predictor.now + 1 if now is None else int(now)
    scorer = TaskScorer(predictor, ordered, task, now, item if task == "item-propensity" else None)
    infos = _task_event_infos(estimator, predictor, scorer.window, catalog)
    members = attribute_groups(infos)
    attribution = _attribute(scorer, members, len(infos), method,
                             lambda: task_gradients(predictor, ordered, scorer, now, steps))
    target = {"task": task, **({"class": scorer.target} if task == "next-event-type" else {}),
              **({"item_id": scorer.target} if task == "item-propensity" else {})}
    details = item_details(estimator.item_features, [scorer.target], catalog)[0] if task == "item-propensity" else {}
    headline = _HEADLINES[task].format(p=_percent(attribution.score), cls=scorer.target, days=predictor.config.horizon_days,
                                       title=details.get("title") or scorer.target)
    text = sentence(headline, infos, attribution.weights, attribution.groups, members, because="mostly because",
                    lowered=True)
    document = _document(user_id, target, attribution, "probability", infos, members, k, text)
    if method == "integrated_gradients":
        document["note"] = "weights follow the task model's Transformer head; the score is the task model's"
    return document


def _percent(p: float) -> str:
    """42%, or 0.4% below one percent: a small probability must not read as none."""
    return f"{p:.0%}" if p >= 0.01 or p == 0 else f"{p:.1%}" if p >= 0.001 else "under 0.1%"


def task_events(predictor: TaskPredictor, user_id: str, events: pl.DataFrame | None) -> pl.DataFrame:
    """The user's events (from the task log, or `events`) in the one order task models read them
    (`position`, sessions marked); `UnknownUserError` when there are none."""
    source = predictor.context.events.drop("position") if events is None else events
    source = source.filter(pl.col("user_id") == user_id)
    if source.is_empty():
        raise UnknownUserError(f"user {user_id!r} has no events to explain a prediction from")
    return live_context(EventLog(source, predictor.context.time_resolution), predictor.context.catalog,
                        predictor.config).events


class TaskScorer:
    """A `MaskScorer` of one user's task prediction over the last `MAX_EVENTS` of their events.

    Each keep-mask row becomes a user of its own (earlier events always kept), all scored in one
    `predict_users` call. The target (next-event-type's class, item-propensity's item) is fixed by
    the first row of the first call, which is the full history in every caller here, unless given.
    A variant the model gives no prediction for (no events left, the candidate item gone) scores the
    mean prediction over the stored log's users, "a typical customer".
    """

    def __init__(self, predictor: TaskPredictor, ordered: pl.DataFrame, task: str, now: int, target: str | None = None):
        self.predictor, self.task, self.now, self.target = predictor, task, now, target
        self._fixed = False
        self.events = ordered.drop("position")
        self.start = max(0, ordered.height - MAX_EVENTS)
        self.window = ordered.slice(self.start)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        keep = np.hstack([np.ones((len(masks), self.start), dtype=bool), masks])
        rows, positions = np.nonzero(keep)
        frame = self.events[positions].with_columns(user_id=pl.Series([f"\x00variant-{r}" for r in rows], dtype=pl.String))
        scored = self.predictor.predict_users(frame, self.now, tasks=(self.task,))
        values = [scored.get(f"\x00variant-{r}", {}).get(self.task) for r in range(len(masks))]
        if self.task in ("next-event-type", "item-propensity") and not self._fixed:
            self._fix_target(values[0] or {})
        return np.array([self._value(v) for v in values], dtype=np.float64)

    def _fix_target(self, first: dict) -> None:
        if self.target is None:
            if not first:
                raise UnknownUserError(f"no {self.task} prediction for this user's events")
            self.target = max(first, key=first.get)
        elif self.target not in first:
            raise UnknownItemError(f"{self.target!r} is not among this user's {self.task} candidates")
        self._fixed = True

    def _value(self, value: Any) -> float:
        if isinstance(value, dict):
            value = value.get(self.target)
        return _typical(self.predictor, self.task, self.target) if value is None else float(value)


_TYPICAL: weakref.WeakKeyDictionary[TaskPredictor, dict] = weakref.WeakKeyDictionary()


def _typical(predictor: TaskPredictor, task: str, target: str | None) -> float:
    """Mean prediction of `task` (of `target`'s class for next-event-type) over the stored log's users."""
    cache = _TYPICAL.setdefault(predictor, {})
    key = (task, target if task == "next-event-type" else None)
    if key not in cache:
        table = predictor.predict_proba(task)
        column = f"p_{target}" if task == "next-event-type" else "probability"
        cache[key] = float(table[column].mean()) if table.height and column in table.columns else 0.0
    return cache[key]


def _task_event_infos(estimator: Shopformer, predictor: TaskPredictor, window: pl.DataFrame,
                      catalog: Catalog | None) -> list[EventInfo]:
    ids = window["item_id"].to_list()
    details = item_details(estimator.item_features, [i or "" for i in ids], catalog or predictor.context.catalog)
    timed = predictor.context.time_resolution != "order"
    return [EventInfo(j, ids[j], str(kind), int(ts) if timed else None, **details[j])
            for j, (kind, ts) in enumerate(zip(window["event_type"].to_list(), window["timestamp"].to_list(), strict=True))]


def task_gradients(predictor: TaskPredictor, ordered: pl.DataFrame, scorer: TaskScorer, now: int,
                   steps: int) -> Attribution:
    """IG of the task model's Transformer head for the user's live example, mapped onto the window."""
    head = _transformer_head(predictor, scorer.task)
    context = live_context(EventLog(ordered.drop("position"), predictor.context.time_resolution),
                           predictor.context.catalog, predictor.config)
    examples = live_examples(scorer.task, context, now, predictor.config, users=[str(ordered["user_id"][0])])
    if scorer.task == "item-propensity":
        examples = TaskExamples(examples.task, examples.frame.filter(pl.col("item_id") == scorer.target), examples.classes)
    if len(examples) == 0:
        raise UnknownUserError(f"no {scorer.task} example for this user's events")
    inputs = task_inputs(head.behaviour, examples, context)
    encoder, network, extras = head.head_network(inputs)
    first = np.array([0])
    ig = head_gradients(encoder, network, inputs.histories.rows(first), extras[:1],
                        session_items=inputs.session_batch(first),
                        candidate=None if inputs.candidates is None else int(inputs.candidates[0]),
                        output=predictor.classes[scorer.task].index(scorer.target) if scorer.task == "next-event-type" else None,
                        steps=steps, num_threads=head.behaviour.num_threads)
    # The example reads the user's first `end` events, the head the last of those; the window is the
    # user's last `MAX_EVENTS` events.
    end = int(examples.frame["history_end"][0])
    read = min(len(ig.weights), end)
    positions = np.arange(end - read, end) - scorer.start
    inside = (positions >= 0) & (positions < scorer.window.height)
    weights = np.zeros(scorer.window.height)
    weights[positions[inside]] = ig.weights[len(ig.weights) - read :][inside]
    return Attribution(ig.method, ig.score, weights, baseline=ig.baseline)


def _transformer_head(predictor: TaskPredictor, task: str) -> TransformerTaskModel:
    """The Transformer task model behind `task`'s (calibrated) model: itself, or the hybrid's head."""
    model = getattr(predictor.models[task], "model", predictor.models[task])
    if isinstance(model, HybridTaskModel):
        model = model.head
    if not isinstance(model, TransformerTaskModel):
        raise ConfigError(f"integrated gradients need a Transformer task model; the {task!r} model is "
                          f"{getattr(model, 'name', type(model).__name__)}: use method='occlusion'")
    return model


# ----------------------------------------------------------------------------- shared


def _attribute(scorer: MaskScorer, groups: dict[str, np.ndarray], n: int, method: str, gradients) -> Attribution:
    """Occlusion or Banzhaf weights (groups in the same batch), or `gradients()`'s IG weights with the
    score and the groups by occlusion (one batch, scored first: the full history fixes a task's target)."""
    if method == "occlusion":
        return occlusion(scorer, n, groups)
    if method == "banzhaf":
        return banzhaf(scorer, n, groups)
    masks = leave_one_out_masks(n)[:1]
    if groups:
        masks = np.vstack([masks, ~np.stack(list(groups.values()))])
    scores = scorer(masks)
    ig = gradients()
    group_weights = {name: float(scores[0] - s) for name, s in zip(groups, scores[1:], strict=True)}
    return Attribution(ig.method, float(scores[0]), ig.weights, group_weights, ig.baseline)


def _document(user_id: str, target: dict, attribution: Attribution, units: str, infos: Sequence[EventInfo],
              members: dict[str, np.ndarray], k: int, text: str) -> dict[str, Any]:
    weights = attribution.weights
    top = np.argsort(-np.abs(weights), kind="stable")[:k]
    groups = sorted(attribution.groups.items(), key=lambda gw: -abs(gw[1]))[:_TOP_GROUPS]
    return {"user_id": user_id, "target": target, "score": round(attribution.score, 6), "units": units,
            "method": attribution.method, "n_events": len(infos),
            "events": [infos[j].as_dict(weights[j]) for j in top],
            "groups": [{"group": g, "events": int(members[g].sum()), "weight": round(w, 6)} for g, w in groups],
            "sentence": text}
