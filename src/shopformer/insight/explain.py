"""Explanations of one user's predictions: which past events (and which item attributes) pushed them.

Targets, both through the `insight.attribution` methods:

* the next-item score of an item: its log-probability under the behaviour model's scores
  (`BehaviourModel.score_histories`, count prior included) after the user's history;
* a task head's probability (`models.heads.TaskHead` on a behaviour Transformer's pooled states).

Event groups ("brand:Acme", "category:…", "tag:matte", "word:serum") let occlusion say what the events that
matter have in common, and `sentence` turns the strongest events and groups into a line a shop
manager reads: "Recommended because you carted Acme Shampoo on Tuesday and viewed two items of brand Y."
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
import torch
from torch import Tensor

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.schema import Catalog
from shopformer.data.sequences import SequenceArrays
from shopformer.features.items import ItemFeatures
from shopformer.insight.attribution import Attribution, MaskScorer, integrated_gradients
from shopformer.models.base import BehaviourModel
from shopformer.models.heads import TaskHead, pool_states
from shopformer.models.inputs import gather_windows
from shopformer.models.transformer import BehaviourTransformer
from shopformer.runtime import torch_threads

__all__ = ["UNKNOWN_ITEM", "EventInfo", "attribute_groups", "head_gradients", "head_probability", "history_variants", "item_details",
           "next_item_gradients", "next_item_scorer", "sentence"]

_VERBS = {"view": "viewed", "click": "clicked", "favourite": "saved", "cart": "carted", "purchase": "bought",
          "search": "searched for", "review": "reviewed"}
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
#: Title words too common to tell items apart.
_STOPWORDS = frozenset("with from this that for and the set pack size new edition".split())
_MAX_WORD_GROUPS = 8
#: `EventInfo.item_id` of an event whose item the model does not know.
UNKNOWN_ITEM = "unknown item"
_TITLE_CHARS = 48
#: How much more than its strongest event a group's removal must cost to be named in a sentence.
_GROUP_GAIN = 1.25


@dataclass(frozen=True)
class EventInfo:
    """One past event as a shop manager reads it. `timestamp` is None when the log only orders events."""

    position: int
    item_id: str | None
    event_type: str
    timestamp: int | None
    title: str | None = None
    category: str | None = None
    brand: str | None = None
    #: The item's other attribute values ("matte", a catalog column's "colour:red").
    tags: tuple[str, ...] = ()

    def as_dict(self, weight: float) -> dict:
        return {"position": self.position, "item_id": self.item_id, "event_type": self.event_type,
                "timestamp": self.timestamp, "title": self.title, "category": self.category, "brand": self.brand,
                "weight": round(float(weight), 6)}


# ----------------------------------------------------------------------------- next-item target


def _one_row(history: SequenceArrays) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    if len(history.lengths) != 1:
        raise ValueError(f"explanations take one history, got {len(history.lengths)}")
    return history.items, history.event_types, history.timestamps


def history_variants(history: SequenceArrays, masks: np.ndarray) -> SequenceArrays:
    """Row `r`: the history's events kept by `masks[r]`. A row that keeps none gets one unknown-item
    event of unknown type at the last event's time, the form task inputs give a user without events."""
    items, types, times = _one_row(history)
    masks = np.asarray(masks, dtype=bool)
    empty = ~masks.any(1)
    padded = np.hstack([masks, empty[:, None]])  # the extra column is the placeholder event
    lengths = padded.sum(1)

    def take(values: np.ndarray | None, placeholder: int) -> np.ndarray | None:
        if values is None:
            return None
        return np.broadcast_to(np.append(values, placeholder), padded.shape)[padded].astype(np.int64)

    last_time = int(times[-1]) if times is not None and len(times) else 0
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return SequenceArrays(offsets, take(items, UNKNOWN_CODE), take(types, UNKNOWN_CODE), take(times, last_time))


def next_item_scorer(model: BehaviourModel, history: SequenceArrays, target: int) -> MaskScorer:
    """Log-probability of item code `target` after each variant of one history (one batched call)."""
    if target < FIRST_CODE:
        raise ValueError(f"item code {target} is reserved, not an item")

    def score(masks: np.ndarray) -> np.ndarray:
        scores = model.score_histories(history_variants(history, masks))
        return torch.log_softmax(scores, dim=1)[:, target].double().numpy()

    return score


def next_item_gradients(model: BehaviourModel, history: SequenceArrays, target: int, steps: int = 32,
                        baseline: str = "zero") -> Attribution:
    """IG weights of one history's events for the log-probability of item code `target`.

    The count prior is not differentiable in the embeddings: its terms for the full history are held
    fixed, so the full score equals the one occlusion attributes.
    """
    transformer = model.transformer
    recent = history.keep_last(model.max_len)
    batch = gather_windows(recent, recent.offsets[:-1], recent.offsets[1:])
    with torch.no_grad(), torch_threads(model.num_threads):
        blended = model.score_histories(recent)[0]
        own = torch.log_softmax(transformer.scores(transformer.next_item_hidden(*_batch_tensors(batch, 1))), 1)[0]
        prior = torch.nan_to_num(blended - own, nan=0.0, posinf=0.0, neginf=0.0)  # reserved codes: -inf - -inf

    def target_score(rows: int) -> Tensor:
        hidden = transformer.next_item_hidden(*_batch_tensors(batch, rows))
        with torch.no_grad():
            table = transformer.item_table()
        logits = hidden @ table.T
        logits[:, :FIRST_CODE] = -torch.inf
        return torch.log_softmax(logits + prior, dim=1)[:, target]

    with torch_threads(model.num_threads):
        return integrated_gradients(transformer, target_score, int(recent.lengths[0]), steps, baseline)


def _batch_tensors(batch, rows: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
    return tuple(None if t is None else t.expand(rows, -1) for t in (batch.items, batch.event_types, batch.timestamps))


# ----------------------------------------------------------------------------- task-head target


def head_probability(logits: Tensor, output: int | None) -> Tensor:
    """P(label = 1) of binary logits `(b,)`, or P(class `output`) of multi-class logits `(b, c)`."""
    if logits.dim() == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)[:, output or 0]


def head_gradients(encoder: BehaviourTransformer, head: TaskHead, history: SequenceArrays, extras: Tensor, *,
                   session_items: Tensor | None = None, candidate: int | None = None, output: int | None = None,
                   steps: int = 32, baseline: str = "zero", num_threads: int = 1) -> Attribution:
    """IG weights of one example's history events for a task head's probability.

    `history` is the example's encoded history (one row), `extras` its standardised scalars `(1, n)`,
    `session_items` its left-padded session item codes `(1, length)` (for heads with item scalars),
    `candidate` the item code of item-level tasks, `output` the class of multi-class heads.
    """
    batch = gather_windows(history, history.offsets[:-1], history.offsets[1:])

    def target_score(rows: int) -> Tensor:
        items, types, times = _batch_tensors(batch, rows)
        state = pool_states(encoder(items, types, times), items != 0)
        codes = None if candidate is None else torch.full((rows,), candidate, dtype=torch.long)
        vector = None if codes is None else encoder.item_encoder(codes)
        session = None if session_items is None else session_items.expand(rows, -1)
        return head_probability(head(state, extras.expand(rows, -1), vector, session, codes), output)

    with torch_threads(num_threads):
        return integrated_gradients(encoder, target_score, int(history.lengths[0]), steps, baseline)


# ----------------------------------------------------------------------------- what the events are


def item_details(features: ItemFeatures, item_ids: Sequence[str], catalog: Catalog | None = None) -> list[dict]:
    """Title, category, brand and tags of each item: the catalog's title, category and brand where it
    has them, else those the item table was built with (the title stays None); tags from the table."""
    codes = features.codes(list(item_ids))
    vocab = features.vocabularies

    def name(values: list[str], code: int) -> str | None:
        return values[code - FIRST_CODE] if FIRST_CODE <= code < len(values) + FIRST_CODE else None

    def tags(code: int) -> tuple[str, ...]:  # category and brand tokens are said by their own fields
        tokens = (name(vocab.attributes, int(t)) for t in features.attribute_index[code] if t)
        return tuple(t.removeprefix("attr:") for t in tokens if t and not t.startswith(("category:", "brand:")))

    details = [{"title": None, "category": name(vocab.categories, int(features.category[c])),
                "brand": name(vocab.brands, int(features.brand[c])), "tags": tags(int(c))} for c in codes]
    if catalog is not None:
        columns = [c for c in ("title", "category", "brand") if c in catalog.frame.columns]
        rows = catalog.frame.filter(pl.col("item_id").is_in(list(set(item_ids)))).select("item_id", *columns)
        found = {row["item_id"]: row for row in rows.iter_rows(named=True)}
        for detail, item in zip(details, item_ids, strict=True):
            detail.update({c: found[item][c] for c in columns if item in found and found[item][c] is not None})
    return details


def attribute_groups(events: Sequence[EventInfo]) -> dict[str, np.ndarray]:
    """Events sharing a brand, a category, a tag or a title word, for groups of two or more events:
    `{"brand:Acme": (n,) bool, "category:Home > Kitchen": …, "tag:matte": …, "word:serum": …}`.
    A group with the same events as an earlier one is left out: it would say no more."""
    groups: dict[str, np.ndarray] = {}
    seen: set[bytes] = set()

    def add(name: str, members: np.ndarray) -> None:
        if members.sum() >= 2 and members.tobytes() not in seen:
            groups[name] = members
            seen.add(members.tobytes())

    for field in ("brand", "category"):
        values = [getattr(e, field) for e in events]
        for value in dict.fromkeys(v for v in values if v):
            add(f"{field}:{value}", np.array([v == value for v in values]))
    for kind, sets in (("tag", [set(e.tags) for e in events]), ("word", [_title_words(e) for e in events])):
        for value, _ in Counter(v for values in sets for v in values).most_common(_MAX_WORD_GROUPS):
            add(f"{kind}:{value}", np.array([value in values for values in sets]))
    return groups


def _title_words(event: EventInfo) -> set[str]:
    brand = (event.brand or "").lower().split()
    words = re.findall(r"[^\W\d_]{4,}", (event.title or "").lower())
    return {w for w in words if w not in _STOPWORDS and w not in brand}


# ----------------------------------------------------------------------------- the sentence


def sentence(headline: str, events: Sequence[EventInfo], weights: np.ndarray, groups: dict[str, float],
             group_members: dict[str, np.ndarray], *, because: str = "because", lowered: bool = False) -> str:
    """`headline` + the strongest reasons: "… because you carted X on Tuesday and viewed two items of brand Y."

    Reasons are the events (and groups of events) with the largest positive weights; with `lowered`,
    the strongest negative event is named too ("…; buying Z on Monday lowers it").
    """
    reasons = _reasons(events, np.asarray(weights, dtype=np.float64), groups, group_members)
    text = f"{headline} {because} you {_join(reasons)}" if reasons else f"{headline}: no single event of yours points to it"
    if lowered and len(weights) and float(np.min(weights)) < 0:
        worst = events[int(np.argmin(weights))]
        text += f"; that you {_event_phrase(worst)} lowers it"
    return text + "."


def _reasons(events: Sequence[EventInfo], weights: np.ndarray, groups: dict[str, float],
             members: dict[str, np.ndarray]) -> list[str]:
    """At most two phrases: the best telling group, then the strongest events it does not cover.

    A group is telling when leaving its events out costs clearly more (`_GROUP_GAIN`) than the best
    event among them alone does, and more than the best event overall: "bought seven items tagged X"
    must not stand for one item that matters and six that do not.
    """
    order = [int(j) for j in np.argsort(-weights, kind="stable") if weights[j] > 0]
    if not order:
        return []
    telling = [(g, w) for g, w in groups.items()
               if w > weights[order[0]] and w > _GROUP_GAIN * max(float(weights[members[g]].max()), 0.0)]
    # A brand, category or tag reads better than a title word: words only when none is telling.
    named = [(g, w) for g, w in telling if not g.startswith("word:")] or telling
    phrases, covered = [], np.zeros(len(events), dtype=bool)
    if named:
        group = max(named, key=lambda gw: gw[1])[0]
        phrases.append(_group_phrase(group, [e for e, m in zip(events, members[group], strict=True) if m]))
        covered = members[group]
    phrases += [_event_phrase(events[j]) for j in order if not covered[j]][: 2 - len(phrases)]
    return phrases


def _event_phrase(event: EventInfo) -> str:
    when = "" if event.timestamp is None else f" on {datetime.fromtimestamp(event.timestamp, UTC):%A}"
    if event.item_id in (None, "", UNKNOWN_ITEM):  # a search, or an item the model never saw
        return ("searched" if event.event_type == "search" else f"{_verb(event.event_type)} an unlisted item") + when
    what = event.title or event.item_id
    if len(what) > _TITLE_CHARS:
        what = what[: _TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return f"{_verb(event.event_type)} {what}{when}"


def _group_phrase(group: str, events: list[EventInfo]) -> str:
    field, value = group.split(":", 1)
    types = list(dict.fromkeys(_verb(e.event_type) for e in events))
    verb = " and ".join(types) if len(types) <= 2 else "looked at"
    count = _NUMBERS[len(events)] if len(events) < len(_NUMBERS) else str(len(events))
    where = {"brand": f"of brand {value}", "category": f"in {value.split(' > ')[-1]}", "tag": f'tagged "{value}"',
             "word": f'with "{value}" in the name'}[field]
    return f"{verb} {count} items {where}"


def _verb(event_type: str) -> str:
    return _VERBS.get(event_type, f"had a {event_type} event on")


def _join(phrases: list[str]) -> str:
    return " and ".join(phrases)
