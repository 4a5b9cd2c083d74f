"""A next-best-action simulator on the demo shop, whose responses are known, so regret can be counted.

Every decision is a visit (a session start) of a regular demo-shop customer. The policy sees the
user's state from their events before the visit (`policy.state`); the simulator also knows what
the generator drew: the visit's true purchase probability p, the user's price sensitivity s,
whether they are about to churn, whether messages annoy them, and the visit's order value v.

Ground truth of each action (MARGIN m = 0.3; money in the catalog's currency):
* nothing:       p m v
* coupon d:      purchase log-odds + COUPON_LIFT s d; the discount is paid on the order: p' (m - d) v
* cart reminder: log-odds + REMINDER_LIFT on a warm cart (an open cart from the last 48 h), else nothing; cost 0.05
* win-back:      p m v, plus the value of three future orders (3 m v) times +0.3 for a user about to
                 churn (within 21 days of leaving) and -0.15 for a user messages annoy (one in four); cost 0.05

A stream of `rounds` decisions samples visits with replacement. Realised rewards share random
numbers across actions (one uniform for the purchase, one for the retention effect), so every
policy faces the same luck and `rewards[i, a]` is what action a would have earned in round i.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.ingest import ingest_files
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.policy.state import context_vector, state_features

__all__ = ["ACTIONS", "Stream", "World", "demo_world", "make_stream"]

ACTIONS = ("nothing", "coupon-5", "coupon-10", "coupon-20", "cart-reminder", "win-back")
DISCOUNTS = {"coupon-5": 0.05, "coupon-10": 0.10, "coupon-20": 0.20}
MARGIN, COUPON_LIFT, REMINDER_LIFT, MESSAGE_COST = 0.3, 4.0, 1.5, 0.05
RETAINED, ANNOYED, ANNOYABLE_SHARE, AT_RISK_DAYS = 0.3, 0.15, 0.25, 21


@dataclass(frozen=True)
class World:
    """One row per visit: what the policy sees (`states`) and what only the simulator knows."""

    states: list[dict[str, float]]
    purchase_probability: np.ndarray
    sensitivity: np.ndarray
    at_risk: np.ndarray
    annoyed: np.ndarray
    order_value: np.ndarray
    warm_cart: np.ndarray

    def __len__(self) -> int:
        return len(self.states)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def purchase_probabilities(world: World) -> np.ndarray:
    """(visits, actions): the chance of an order under each action."""
    base = _logit(world.purchase_probability)
    out = np.tile(world.purchase_probability[:, None], (1, len(ACTIONS)))
    for name, discount in DISCOUNTS.items():
        out[:, ACTIONS.index(name)] = _sigmoid(base + COUPON_LIFT * world.sensitivity * discount)
    out[:, ACTIONS.index("cart-reminder")] = _sigmoid(base + REMINDER_LIFT * world.warm_cart)
    return out


def _retention_effect(world: World) -> np.ndarray:
    """Expected change in future value from a win-back message."""
    future = 3 * MARGIN * world.order_value
    return future * (RETAINED * world.at_risk - ANNOYED * world.annoyed)


def order_margins(world: World) -> np.ndarray:
    """(visits, actions): what an order earns under each action (coupons pay their discount)."""
    margin = np.tile((MARGIN * world.order_value)[:, None], (1, len(ACTIONS)))
    for name, discount in DISCOUNTS.items():
        margin[:, ACTIONS.index(name)] = (MARGIN - discount) * world.order_value
    return margin


def costs() -> np.ndarray:
    return np.array([MESSAGE_COST if name in ("cart-reminder", "win-back") else 0.0 for name in ACTIONS])


def expected_rewards(world: World) -> np.ndarray:
    """(visits, actions): each action's expected reward, the oracle's knowledge."""
    out = purchase_probabilities(world) * order_margins(world) - costs()
    out[:, ACTIONS.index("win-back")] += _retention_effect(world)
    return out


@dataclass(frozen=True)
class Stream:
    """`rounds` decisions: the policy's contexts, the realised and expected reward of every action,
    and the action each rule of `RULES` takes (rules read the states, which the stream does not keep)."""

    context: np.ndarray
    rewards: np.ndarray
    expected: np.ndarray
    rule_choices: np.ndarray
    batch: int
    seed: int

    @classmethod
    def load(cls, path: str | Path) -> Stream:
        with np.load(path) as data:
            return cls(data["context"], data["rewards"], data["expected"], data["rule_choices"], int(data["batch"]),
                       int(data["seed"]))

    def save(self, path: str | Path) -> None:
        """The npz file peers read: context, rewards, batch and seed (plus expected and rule_choices)."""
        np.savez(path, context=self.context, rewards=self.rewards, expected=self.expected, rule_choices=self.rule_choices,
                 batch=np.int64(self.batch), seed=np.int64(self.seed))


def make_stream(world: World, rounds: int, *, batch: int = 100, seed: int = 0) -> Stream:
    rng = np.random.default_rng(seed)
    visit = rng.integers(0, len(world), rounds)
    purchase_draw, retention_draw = rng.random(rounds), rng.random(rounds)
    bought = purchase_draw[:, None] < purchase_probabilities(world)[visit]
    rewards = bought * order_margins(world)[visit] - costs()
    future = 3 * MARGIN * world.order_value[visit]
    # One uniform decides both effects: retained below RETAINED (if at risk), lost above 1 - ANNOYED (if annoyed).
    effect = future * ((retention_draw < RETAINED) * world.at_risk[visit] - (retention_draw > 1 - ANNOYED) * world.annoyed[visit])
    rewards[:, ACTIONS.index("win-back")] += effect
    states = [world.states[v] for v in visit]
    rule_choices = np.stack([rule(states) for rule in RULES.values()])
    return Stream(context_vector(states), rewards, expected_rewards(world)[visit], rule_choices, batch, seed)


def demo_world(root: str | Path, config: DemoShopConfig | None = None, *, seed: int = 0) -> World:
    """The visits of the demo shop generated under `root` (generated there first if absent)."""
    root = Path(root)
    files = generate_demo_shop(root, config or DemoShopConfig()) if not (root / "ground_truth" / "meta.json").exists() \
        else _files(root)
    events = ingest_files(files.events, files.catalog, name="demo-shop").dataset.events.frame
    sessions = pl.read_csv(files.sessions).filter(pl.col("kind") == "browse")
    users = pl.read_csv(files.users)
    return _visits(events, sessions, users, np.random.default_rng(seed))


def _files(root: Path):
    from shopformer.data.synth import DemoShopFiles

    return DemoShopFiles.under(root)


def _epoch(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").dt.epoch("s")


def _visits(events: pl.DataFrame, sessions: pl.DataFrame, users: pl.DataFrame, rng: np.random.Generator) -> World:
    users = users.with_columns(churn_at=_epoch("churn_time"), annoyed=pl.lit(rng.random(users.height) < ANNOYABLE_SHARE))
    sessions = sessions.with_columns(start=_epoch("start_time")).join(users, on="user_id").sort("user_id", "start")
    value = events.group_by("session_id").agg(pl.col("value").drop_nulls().mean().alias("order_value"))
    sessions = sessions.join(value, on="session_id", how="left").with_columns(
        pl.col("order_value").fill_null(events["value"].drop_nulls().median()))
    by_user = {key[0]: frame for key, frame in events.sort("timestamp").partition_by("user_id", as_dict=True).items()}
    states = []
    for user, start in zip(sessions["user_id"].to_list(), sessions["start"].to_list()):
        frame = by_user.get(user)
        before = frame.filter(pl.col("timestamp") < start) if frame is not None else None
        kinds, times = ([], []) if before is None else (before["event_type"].to_list(), before["timestamp"].to_list())
        states.append(state_features(kinds, times, start))
    warm = np.array([s["carts_open"] >= 1 and s["hours_since_last_cart"] <= 48 for s in states])
    churn_at = sessions["churn_at"].fill_null(np.iinfo(np.int64).max).to_numpy()
    at_risk = (sessions["is_churner"].to_numpy() == 1) & (churn_at - sessions["start"].to_numpy() <= AT_RISK_DAYS * 86_400)
    return World(states, sessions["true_purchase_probability"].to_numpy(), sessions["price_sensitivity"].to_numpy(),
                 at_risk.astype(float), sessions["annoyed"].to_numpy().astype(float),
                 sessions["order_value"].to_numpy().astype(float), warm.astype(float))


def _rule(states: list[dict[str, float]], action: str, when) -> np.ndarray:
    return np.array([ACTIONS.index(action) if when(s) else 0 for s in states])


#: Fixed rules a shop might run instead of learning, on what the policy sees.
RULES = {
    "no action": lambda states: np.zeros(len(states), dtype=int),
    "coupon every cart": lambda states: _rule(states, "coupon-10", lambda s: s["carts_open"] >= 1),
    "message every at-risk user": lambda states: _rule(states, "win-back", lambda s: s["hours_since_last_event"] >= 7 * 24),
}


def play(policy, stream: Stream, *, exploration: float = 0.0, progress=None) -> np.ndarray:
    """The actions a learning policy takes on the stream: the first batch uniformly at random
    (`default_rng(stream.seed)`), then each batch by the model learned from all batches before it,
    with a share `exploration` of rounds drawn uniformly (the decision service's floor)."""
    n, batch, n_actions = len(stream.context), stream.batch, stream.rewards.shape[1]
    rng = np.random.default_rng(stream.seed)
    actions = np.empty(n, dtype=int)
    actions[:batch] = rng.integers(n_actions, size=min(batch, n))
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        if start:
            chosen = policy.choose(stream.context[rows])
            explore = rng.random(len(rows)) < exploration
            actions[rows] = np.where(explore, rng.integers(n_actions, size=len(rows)), chosen)
        policy.update(stream.context[rows], actions[rows], stream.rewards[rows, actions[rows]])
        if progress is not None:
            progress(rows[-1] + 1, n)
    return actions


def regret(stream: Stream, actions: np.ndarray) -> np.ndarray:
    """Cumulative expected regret against the oracle, which knows every action's expected reward."""
    taken = stream.expected[np.arange(len(actions)), actions]
    return np.cumsum(stream.expected.max(1) - taken)
