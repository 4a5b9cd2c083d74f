"""The decision log: every decision with its propensity, context, policy version and later outcome.

SQLite in WAL mode with `synchronous=FULL`, as the event store: a decision is on disk before it is
answered, so it survives a `kill -9`. Caps and the budget are checked and the decision written in
one `BEGIN IMMEDIATE` transaction, which holds the database's write lock from the first read: two
requests (processes with their own `DecisionLog`, or threads sharing one, whose calls take turns on
its connection) can never both see room under a cap and both take it.

Forgetting a user anonymises their decisions instead of deleting them: the id, context and slate go,
the action, cost and time stay, so what was spent still counts against the budget.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopformer.errors import ConfigError, ShopformerError
from shopformer.policy.actions import ActionConfig

__all__ = ["Decision", "DecisionLog", "OutcomeConflict", "Room", "context_hash"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS decisions (
        decision_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, action TEXT NOT NULL, propensity REAL NOT NULL,
        cost REAL NOT NULL, context_hash TEXT NOT NULL, context TEXT NOT NULL, policy_version TEXT NOT NULL,
        decided_at REAL NOT NULL, reward REAL, rewarded_at REAL, slate TEXT, clicked TEXT, allowed TEXT)""",
    "CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions (user_id, action, decided_at)",
    "CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_at)",
)
_COLUMNS = ("decision_id", "user_id", "action", "propensity", "cost", "context_hash", "context", "policy_version",
            "decided_at", "reward", "rewarded_at", "slate", "clicked", "allowed")


@dataclass(frozen=True)
class Decision:
    decision_id: str
    user_id: str
    action: str
    propensity: float
    cost: float
    context_hash: str
    context: dict[str, float]
    policy_version: str
    decided_at: float
    reward: float | None = None
    rewarded_at: float | None = None
    #: A slate decision's shown items, their features and the bundle they came from.
    slate: dict[str, Any] | None = None
    #: The shown items that were clicked, when the outcome said.
    clicked: list[str] | None = None
    #: The actions that could have been taken (eligible, under cap and budget): what any other policy
    #: could have done in this round, for off-policy evaluation.
    allowed: list[str] | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Decision:
        values = dict(zip(_COLUMNS, row))
        parsed = {name: json.loads(values[name]) if values[name] is not None else None
                  for name in ("context", "slate", "clicked", "allowed")}
        return cls(**{**values, **parsed})


@dataclass(frozen=True)
class Room:
    """What caps and budget leave a user now: each action's uses in its cap window, the budget left."""

    uses: dict[str, int]
    budget_left: float | None

    def allowed(self, config: ActionConfig) -> dict[str, str | None]:
        """For each action, why it may not be taken now (None: it may)."""
        out: dict[str, str | None] = {}
        for action in config.actions:
            cap = action.cap
            if cap is not None and self.uses[action.name] >= cap.count:
                out[action.name] = f"cap reached: {self.uses[action.name]} of {cap.count} in {cap.days:g} days"
            elif self.budget_left is not None and action.cost > self.budget_left + 1e-12:
                out[action.name] = f"budget: costs {action.cost:g}, {self.budget_left:g} left"
            else:
                out[action.name] = None
        return out


def context_hash(context: dict[str, float]) -> str:
    return hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:16]


class DecisionLog:
    """Decisions by user and time; outcomes attached later by decision id."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"{self.path}: no such decision log")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE), never implicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._lock = threading.RLock()  # one connection: threads take turns, so transactions never interleave
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not create and "decisions" not in tables:
            raise ConfigError(f"{self.path}: not a decision log (no decisions table)")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def decide(self, user_id: str, config: ActionConfig, now: float,
               choose: Callable[[Room], tuple[str, float, dict[str, float], str, dict[str, Any] | None, list[str]]]) -> Decision:
        """Reads the user's room under caps and budget, lets `choose(room)` return (action, propensity,
        context, policy version, slate or None, allowed actions) and stores the decision, all under one write lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                action, propensity, context, version, slate, allowed = choose(self._room(user_id, config, now))
                decision = Decision(uuid.uuid4().hex, user_id, action, float(propensity), config.action(action).cost,
                                    context_hash(context), context, version, now, slate=slate, allowed=allowed)
                columns = (*_COLUMNS[:9], "slate", "allowed")
                self._db.execute(f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                 (decision.decision_id, user_id, action, decision.propensity, decision.cost,
                                  decision.context_hash, json.dumps(context, sort_keys=True), version, now,
                                  None if slate is None else json.dumps(slate), json.dumps(allowed)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return decision

    def _room(self, user_id: str, config: ActionConfig, now: float) -> Room:
        uses = {action.name: 0 for action in config.actions}
        for action in config.actions:
            if action.cap is not None:
                uses[action.name] = self._db.execute(
                    "SELECT COUNT(*) FROM decisions WHERE user_id = ? AND action = ? AND decided_at > ?",
                    (user_id, action.name, now - action.cap.days * 86_400)).fetchone()[0]
        left = None
        if config.budget is not None:
            spent = self._db.execute("SELECT COALESCE(SUM(cost), 0) FROM decisions WHERE decided_at > ?",
                                     (now - config.budget.days * 86_400,)).fetchone()[0]
            left = config.budget.amount - spent
        return Room(uses, left)

    def record_outcome(self, decision_id: str, reward: float, now: float, clicked: list[str] | None = None) -> Decision:
        """Attaches the outcome (and a slate's clicked items); set once, the same outcome again is accepted."""
        with self._lock:
            decision = self.get(decision_id)
            if decision.reward is None and clicked is not None:
                shown = (decision.slate or {}).get("items", [])
                if not set(clicked) <= set(shown):
                    raise ShopformerError(f"clicked items {sorted(set(clicked) - set(shown))} were not in decision "
                                          f"{decision_id}'s slate {shown}")
            if decision.reward is None:
                self._db.execute(
                    "UPDATE decisions SET reward = ?, rewarded_at = ?, clicked = ? WHERE decision_id = ? AND reward IS NULL",
                    (float(reward), now, None if clicked is None else json.dumps(clicked), decision_id))
                decision = self.get(decision_id)  # if another process set it first, this compares with theirs
            if decision.reward != float(reward) or decision.clicked != clicked:
                raise OutcomeConflict(f"decision {decision_id} already has the outcome {decision.reward:g}")
            return decision

    def get(self, decision_id: str) -> Decision:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
        if row is None:
            raise LookupError(f"no decision {decision_id!r} in the decision log")
        return Decision.from_row(row)

    def decisions(self, *, with_outcome: bool = False, user_id: str | None = None) -> list[Decision]:
        """Every decision in time order (only those with an outcome, or of one user, if asked)."""
        where, params = ["1 = 1"], []
        if with_outcome:
            where.append("reward IS NOT NULL")
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE {' AND '.join(where)} "
                                    "ORDER BY decided_at, rowid", params).fetchall()
        return [Decision.from_row(row) for row in rows]

    def forget(self, user_id: str) -> int:
        """Anonymises the user's decisions: no id, context, slate or clicks; action, cost, time and reward stay."""
        with self._lock:
            return self._db.execute(
                "UPDATE decisions SET user_id = '', context = '{}', context_hash = '', slate = NULL, clicked = NULL "
                "WHERE user_id = ?", (user_id,)).rowcount

    def purge_before(self, timestamp: float) -> int:
        """Deletes decisions made before `timestamp` (the service's retention window)."""
        with self._lock:
            return self._db.execute("DELETE FROM decisions WHERE decided_at < ?", (timestamp,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OutcomeConflict(ShopformerError):
    """A second, different outcome for one decision."""
