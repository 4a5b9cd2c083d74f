"""The service behind the HTTP API: one engine reference, the event store, and who may change what.

Threads: the event loop owns the users' states; the one model thread runs every model call
(micro-batched recommendations, search, predictions); the one store thread runs every database
call. Writes (ingest, forget, the final step of a reload) hold one lock, so a reload that rebuilds
the states from the store cannot miss an event stored meanwhile. Reads never wait for a reload: a
new bundle is loaded and warmed up beside the old one and swapped in by replacing one reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE
from shopformer.data.pseudonym import Pseudonymiser
from shopformer.errors import ConfigError
from shopformer.policy.decide import Candidates, NextBestAction
from shopformer.policy.log import DecisionLog
from shopformer.policy.state import PREDICTION_FEATURES, state_features
from shopformer.serve.access import AccessControl, AccessDenied
from shopformer.serve.batching import MicroBatcher
from shopformer.serve.engine import Engine, Recommendation, RecommendationQuery, UnavailableError
from shopformer.serve.ingest import validate_batch
from shopformer.serve.insight import explanation
from shopformer.serve.metrics import Metrics
from shopformer.serve.store import EventStore, is_postgres_url, open_store

__all__ = ["Service"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How often the retention window is applied while the service runs.
RETENTION_CHECK_SECONDS = 3600.0


class Service:
    """Everything a request needs; build it with `Service.open`, then `await start()` in the event loop."""

    def __init__(self, engine: Engine, store: EventStore, *, threads: int, access: AccessControl | None,
                 text_cache_dir: Path | None, max_batch: int = 64, bundle_root: Path | None = None,
                 retention_days: float | None = None, pseudonymiser: Pseudonymiser | None = None,
                 actions: NextBestAction | None = None) -> None:
        self.engine, self.store = engine, store
        #: The next-best-action layer (None: the service was started without an actions file).
        self.actions = actions
        self._forgets = 0  # erasures so far: a decision that raced one reads the user's state again
        self.threads, self.access, self.text_cache_dir = threads, access or AccessControl(), text_cache_dir
        #: `POST /v1/admin/reload` loads bundles under this folder only (default: the served bundle's parent).
        self.bundle_root = (bundle_root or engine.bundle_dir.parent).resolve()
        #: Stored events older than this many days are purged at start and every `RETENTION_CHECK_SECONDS`.
        self.retention_days = retention_days
        self._retention_task: asyncio.Task | None = None
        #: With a key file, user ids are pseudonymised on the way in: the store and the audit log hold no raw id.
        self.pseudonymiser = pseudonymiser
        self.metrics = Metrics()
        self.metrics.model_version = engine.version
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="shopformer-model")
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="shopformer-store")
        self.batcher: MicroBatcher = MicroBatcher(_score_groups, self._model_thread, max_batch=max_batch,
                                                  on_batch=self.metrics.batch_sizes.observe)
        self._write_lock: asyncio.Lock | None = None
        self._reload_lock: asyncio.Lock | None = None
        self.started = time.time()

    @classmethod
    def open(cls, bundle_dir: str | Path, store: str | Path, *, threads: int = 1, access: AccessControl | None = None,
             text_cache_dir: str | Path | None = None, max_batch: int = 64, bundle_root: str | Path | None = None,
             retention_days: float | None = None, pseudonymiser: Pseudonymiser | None = None,
             actions: str | Path | None = None, decision_log: str | Path | None = None) -> Service:
        """Loads the bundle, opens the store and rebuilds the users' states from it (blocking).

        `access`: the keys and audit log (default: open, no audit); `max_batch` caps the recommendation
        requests scored together (1: no micro-batching); `bundle_root`: where reloads may load from;
        `retention_days`: how long stored events are kept (None: for ever); `pseudonymiser`: the key
        chain the bundle's user ids were pseudonymised with (None: raw ids); `actions`: the shop's
        action YAML, whose decisions go to `decision_log` (an SQLite file; default beside a SQLite store).
        """
        import torch

        torch.set_num_threads(threads)
        cache = Path(text_cache_dir) if text_cache_dir else None
        engine = Engine.load(bundle_dir, threads=threads, text_cache_dir=cache)
        event_store = open_store(store)
        engine.restore(event_store)
        decider = _open_actions(actions, decision_log, store)
        if decider is not None and decider.config.use_predictions:
            engine.check_prediction_heads()  # `use_predictions` needs them: fail at start, not at the first decision
        return cls(engine, event_store, threads=threads, access=access, text_cache_dir=cache, max_batch=max_batch,
                   bundle_root=Path(bundle_root) if bundle_root else None, retention_days=retention_days,
                   pseudonymiser=pseudonymiser, actions=decider)

    async def start(self) -> None:
        self._write_lock, self._reload_lock = asyncio.Lock(), asyncio.Lock()
        self.batcher.start()
        if self.retention_days is not None:
            self._retention_task = asyncio.create_task(self._apply_retention())

    async def stop(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
        await self.batcher.stop()
        await self._in_store(self.store.close)
        if self.actions is not None:
            await self._in_store(self.actions.log.close)
        self._model_thread.shutdown(wait=False)
        self._store_thread.shutdown(wait=True)

    async def _in_store(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, function, *args)

    async def _in_model(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, function, *args)

    # ----------------------------------------------------------------------------- events

    async def ingest(self, events: list[dict[str, Any]], time_format: str) -> dict[str, Any]:
        """Validates, stores (durably, before returning) and applies events to the users' states."""
        if self.pseudonymiser is not None:
            events = [{**e, "user_id": self.stored_id(e["user_id"])} if isinstance(e.get("user_id"), str) else e for e in events]
        batch = await self._in_store(validate_batch, events, time_format)
        async with self._write_lock:
            new_ids = set(await self._in_store(self.store.add, batch.accepted))
            new = batch.accepted.filter(pl.col("event_id").is_in(list(new_ids)))
            self.engine.states.apply(new)
        accepted = [{"index": index, "event_id": event_id, "status": "stored" if event_id in new_ids else "duplicate"}
                    for index, event_id in sorted(zip(batch.accepted["index"].to_list(), batch.accepted["event_id"].to_list()))]
        counts = {"stored": new.height, "duplicate": batch.accepted.height - new.height, "rejected": len(batch.rejected)}
        for outcome, count in counts.items():
            self.metrics.events[outcome] += count
        return {"stored": counts["stored"], "duplicates": counts["duplicate"], "accepted": accepted, "rejected": batch.rejected}

    def stored_id(self, user_id: str) -> str:
        """The id the store, the bundle and the audit log know `user_id` by (its pseudonym with a key file)."""
        return user_id if self.pseudonymiser is None else self.pseudonymiser.pseudonym(user_id)

    async def user_events(self, user_id: str) -> list[dict[str, Any]]:
        return await self._in_store(self.store.user_events, self.stored_id(user_id))

    def state(self, user_id: str) -> dict[str, Any]:
        """The recent items the model reads for the user (bundle history plus ingested events)."""
        engine, stored = self.engine, self.stored_id(user_id)
        items = engine.item_ids[engine.states.history(stored)[0]].tolist()
        # Searches and items the bundle does not know have no id in the bundle: null.
        return {"user_id": user_id, "known": engine.states.knows(stored), "recent_items": [i or None for i in items]}

    async def forget(self, user_id: str) -> int:
        """Removes the user's events from the store and every trace from memory."""
        user_id = self.stored_id(user_id)
        async with self._write_lock:
            deleted = await self._in_store(self.store.forget, user_id)
            if self.actions is not None:
                await self._in_store(self.actions.log.forget, user_id)
            self.engine.states.forget(user_id)
            self._forgets += 1
        return deleted

    async def export(self, user_id: str) -> dict[str, Any]:
        """Everything the service holds about a user: stored events and the history the model reads."""
        engine, stored = self.engine, self.stored_id(user_id)
        items, types, times = engine.states.history(stored)
        history = [{"item_id": engine.item_ids[item] or None, "event_type": engine.event_name(kind),
                    "timestamp": int(at) if engine.states.uses_times else None}
                   for item, kind, at in zip(items.tolist(), types.tolist(), times.tolist())]
        decisions = [] if self.actions is None else await self._in_store(
            functools.partial(self.actions.log.decisions, user_id=stored))
        return {"user_id": user_id, "stored_events": await self._in_store(self.store.user_events, stored),
                "model_history": history, "forgotten": engine.states.is_forgotten(stored),
                "decisions": [{**dataclasses.asdict(d), "slate": d.slate and d.slate["items"]} for d in decisions]}

    async def purge(self, before: int) -> int:
        """Deletes stored events older than `before` and rebuilds the users' states without them."""
        async with self._write_lock:
            deleted = await self._in_store(self.store.purge_before, before)
            if self.actions is not None:
                await self._in_store(self.actions.log.purge_before, before)
            if deleted:
                await self._in_store(self.engine.restore, self.store)
        logger.info("retention: %d stored events before %d purged", deleted, before)
        return deleted

    def retention_cutoff(self) -> int | None:
        """The time before which stored events fall outside the retention window (None: no window)."""
        return None if self.retention_days is None else int(time.time() - self.retention_days * 86_400)

    async def _apply_retention(self) -> None:
        while True:
            await self.purge(self.retention_cutoff())
            await asyncio.sleep(RETENTION_CHECK_SECONDS)

    # ----------------------------------------------------------------------------- recommendations

    async def recommend_user(self, user_id: str, k: int, filter_seen: bool, category: str | None) -> tuple[Engine, Recommendation]:
        engine = self.engine
        query = RecommendationQuery(engine.states.history(self.stored_id(user_id)), k, filter_seen, self._mask(engine, category))
        return engine, await self.batcher.submit((engine, query))

    async def recommend_session(
        self, sequence: Sequence[Any], k: int, filter_seen: bool, category: str | None
    ) -> tuple[Engine, Recommendation]:
        engine = self.engine
        events = [item if isinstance(item, dict) else {"item_id": item} for item in sequence]
        history = engine.states.session([e["item_id"] for e in events], [e.get("event_type") for e in events],
                                        [e.get("timestamp") for e in events])
        query = RecommendationQuery(history, k, filter_seen, self._mask(engine, category))
        return engine, await self.batcher.submit((engine, query))

    @staticmethod
    def _mask(engine: Engine, category: str | None):
        return None if category is None else engine.category_mask(category)

    async def similar(self, item_id: str, k: int) -> tuple[Engine, tuple[list[str], list[float]]]:
        engine = self.engine
        return engine, await self._in_model(engine.similar, item_id, k)

    async def search(self, query: str, user_id: str | None, k: int) -> tuple[Engine, dict[str, Any]]:
        engine = self.engine
        _ = engine.text_index  # a bundle without text answers before the text model is loaded
        history = engine.states.history(self.stored_id(user_id)) if user_id is not None else None
        return engine, await self._in_model(engine.search, query, k, history)

    async def predict(self, user_id: str) -> tuple[Engine, dict[str, Any]]:
        engine = self.engine
        engine.check_prediction_heads()
        user_id = self.stored_id(user_id)
        with_bundle_history = not engine.states.is_forgotten(user_id)
        stored = await self._in_store(self.store.frame, user_id)
        return engine, await self._in_model(
            functools.partial(engine.predict, stored, user_id, with_bundle_history=with_bundle_history))

    async def profile(self, user_id: str) -> tuple[Engine, dict[str, Any]]:
        """The user's profile over the bundle's log and the stored events, with live predictions."""
        engine, user_id = self.engine, self.stored_id(user_id)
        with_bundle_history = not engine.states.is_forgotten(user_id)
        stored = await self._in_store(self.store.frame, user_id)
        events = await self._in_model(engine.insight.user_events, stored, user_id, with_bundle_history)
        predictions = None
        if (engine.bundle_dir / "tasks").is_dir():
            predictions = await self._in_model(functools.partial(engine.predict, stored, user_id, with_bundle_history=with_bundle_history))
        return engine, await self._in_model(engine.insight.profile, events, user_id, predictions)

    async def explain(self, user_id: str, item: str | None, task: str | None, k: int, method: str) -> tuple[Engine, dict[str, Any]]:
        """Which of the user's events pushed a recommendation or a task prediction, with signed weights."""
        engine, user_id = self.engine, self.stored_id(user_id)
        stored = await self._in_store(self.store.frame, user_id) if task is not None else None
        call = functools.partial(explanation, engine, user_id, stored, not engine.states.is_forgotten(user_id),
                                 item=item, task=task, k=k, method=method, now=int(time.time()))
        return engine, await self._in_model(call)

    # ----------------------------------------------------------------------------- next best action

    def _decider(self) -> NextBestAction:
        if self.actions is None:
            raise UnavailableError("the service was started without an actions file, so it makes no decisions",
                                   "start it with `shopformer serve --actions actions.yaml`", status=404)
        return self.actions

    def user_state(self, user_id: str, now: float) -> dict[str, float]:
        """The policy's view of the user: counts and recencies of their recent events (`policy.state`)."""
        engine = self.engine
        _, types, times = engine.states.history(self.stored_id(user_id))
        if not engine.states.uses_times:  # an order-only bundle: its history has no clock, only ingested events do
            keep = times > 0
            types, times = types[keep], times[keep]
        return state_features([engine.event_name(t) for t in types.tolist()], times.tolist(), now)

    async def _slate_candidates(self, decider: NextBestAction, user_id: str) -> Candidates | None:
        """The model's top unseen items for the user, which a slate action chooses from."""
        sizes = [a.candidates or max(50, a.size or 10) for a in decider.config.actions if a.kind == "slate"]
        if not sizes:
            return None
        engine, result = await self.recommend_user(user_id, max(sizes), True, None)
        if decider.slates is None or decider.slates.model_version != engine.version:
            decisions = await self._in_store(functools.partial(decider.log.decisions, with_outcome=True))
            await self._in_model(lambda: decider.use_item_vectors(engine.model.item_vectors(), engine.version, decisions))
        codes = np.array([engine.item_codes[i] for i in result.item_ids], dtype=np.int64)
        history = engine.states.history(self.stored_id(user_id))[0]
        return Candidates(result.item_ids, codes, np.array(result.scores), history[history >= FIRST_CODE])

    async def _with_predictions(self, state: dict[str, float], user_id: str) -> list[str]:
        """Adds the task models' probabilities to `state` (0 for a user with no events yet); says so when missing."""
        try:
            predicted = (await self.predict(user_id))[1]
        except LookupError:
            predicted = {}
        missing = [task for task in PREDICTION_FEATURES if not isinstance(predicted.get(task), int | float)]
        state.update({task: 0.0 if task in missing else float(predicted[task]) for task in PREDICTION_FEATURES})
        return [f"no {', '.join(missing)} prediction for this user: 0 used"] if missing else []

    async def _decision_inputs(self, decider: NextBestAction, user_id: str, now: float):
        state = self.user_state(user_id, now)
        notes = await self._with_predictions(state, user_id) if decider.config.use_predictions else []
        return state, notes, await self._slate_candidates(decider, user_id)

    async def next_best_action(self, user_id: str) -> dict[str, Any]:
        """Chooses, logs (durably, before returning) and describes one action for the user."""
        decider, now, forgets = self._decider(), time.time(), self._forgets
        state, notes, candidates = await self._decision_inputs(decider, user_id, now)
        async with self._write_lock:
            if self._forgets != forgets:  # someone was erased meanwhile: read again, so no erased event is logged
                state, notes, candidates = await self._decision_inputs(decider, user_id, now)
            choice = await self._in_store(decider.decide, self.stored_id(user_id), state, now, candidates)
        action = decider.config.action(choice.decision.action)
        answer = {"user_id": user_id, "decision_id": choice.decision.decision_id, "action": action.name,
                  "kind": action.kind, "propensity": choice.decision.propensity, "cost": action.cost,
                  "policy_version": choice.decision.policy_version, "reasons": [*notes, *choice.reasons], "state": state}
        if action.kind == "coupon":
            answer["discount"] = action.discount
        if action.kind == "slate" and choice.decision.slate is not None:
            answer["items"], answer["model_version"] = choice.decision.slate["items"], choice.decision.slate["model_version"]
        return answer

    async def record_outcome(self, decision_id: str, reward: float, clicked: list[str] | None = None) -> dict[str, Any]:
        decision = await self._in_store(self._decider().record_outcome, decision_id, reward, None, clicked)
        return {"decision_id": decision.decision_id, "action": decision.action, "reward": decision.reward,
                "rewarded_at": decision.rewarded_at, "clicked": decision.clicked}

    # ----------------------------------------------------------------------------- reload

    async def reload(self, bundle_dir: str | None) -> Engine:
        """Loads a bundle (default: the current one again) beside the old one, then swaps it in."""
        path = Path(bundle_dir) if bundle_dir else self.engine.bundle_dir
        if not path.resolve().is_relative_to(self.bundle_root):
            raise AccessDenied(403, "outside_bundle_root", f"bundle folder {path} is not under the bundle root {self.bundle_root}")
        if not path.is_dir():
            raise ConfigError(f"bundle folder {path} does not exist")
        async with self._reload_lock:
            engine = await asyncio.to_thread(Engine.load, path, threads=self.threads, text_cache_dir=self.text_cache_dir)
            async with self._write_lock:
                await self._in_store(engine.restore, self.store)
                self.engine = engine  # the swap: requests from here on use the new bundle
            self.metrics.reloads += 1
            self.metrics.model_version = engine.version
        logger.info("now serving %s", engine.version)
        return engine

    async def health(self) -> dict[str, Any]:
        engine = self.engine
        return {"status": "ok", "model_version": engine.version, "bundle": str(engine.bundle_dir),
                "items": engine.n_items - 2, "users_with_ingested_events": engine.states.n_ingested_users,
                "store": self.store.location,
                "item_index": engine.item_index.kind, "uptime_s": round(time.time() - self.started, 1)}


def _open_actions(actions: str | Path | None, decision_log: str | Path | None, store: str | Path) -> NextBestAction | None:
    from shopformer.policy.actions import load_actions

    if actions is None:
        return None
    if decision_log is None:
        if is_postgres_url(store):
            raise ConfigError("with a postgresql:// store, give --decision-log FILE.sqlite for the decisions")
        decision_log = Path(store).with_name("decisions.sqlite")
    return NextBestAction(load_actions(actions), DecisionLog(decision_log))


def _score_groups(items: Sequence[tuple[Engine, RecommendationQuery]]) -> list[Recommendation]:
    """Scores a micro-batch: one model call per engine (two only while a reload swaps engines)."""
    results: list[Recommendation | None] = [None] * len(items)
    groups: dict[int, tuple[Engine, list[int]]] = {}
    for position, (engine, _) in enumerate(items):
        groups.setdefault(id(engine), (engine, []))[1].append(position)
    for engine, positions in groups.values():
        for position, result in zip(positions, engine.recommend([items[p][1] for p in positions])):
            results[position] = result
    return results

